"""Everything one simulator process holds: settings, seeded catalogue, tokens, faults and counters."""

from dataclasses import dataclass

from rs_simulator.auth import TokenStore
from rs_simulator.cadip_data import seeded_sessions
from rs_simulator.catalogue import Catalogue
from rs_simulator.faults import FaultInjector
from rs_simulator.product_data import seeded_products
from rs_simulator.profiles import StationProfile
from rs_simulator.settings import SimulatorSettings
from rs_simulator.stations import StationName
from rs_simulator.stats import Stats


def seeded_catalogue(settings: SimulatorSettings) -> Catalogue:
    """The start-up catalogue: a pure function of the settings (no files read but the package's sample)."""
    catalogue = Catalogue()
    for session in seeded_sessions(settings.seed, settings.chunk_size):
        catalogue.add_session(session)
    for station in (StationName.AUXIP, StationName.PRIP):
        for product in seeded_products(settings.seed, station, settings.product_size):
            catalogue.add_product(station, product)
    return catalogue


@dataclass
class SimulatorState:
    """Shared by every route of one app instance."""

    settings: SimulatorSettings
    catalogue: Catalogue
    tokens: dict[str, TokenStore]
    """By station name: a token of one station is unknown to every other."""
    faults: FaultInjector
    stats: Stats
    profiles: dict[str, StationProfile]
    """Every station served, by name."""

    @classmethod
    def create(cls, settings: SimulatorSettings) -> "SimulatorState":
        profiles = settings.station_profiles()
        return cls(
            settings=settings,
            catalogue=seeded_catalogue(settings),
            tokens={name: TokenStore(settings, expires_in=p.token_expires_in) for name, p in profiles.items()},
            faults=FaultInjector(settings.seed, list(profiles)),
            stats=Stats(list(profiles)),
            profiles=profiles,
        )
