"""The in-memory catalogue of the three stations: CADIP sessions and chunk files, AUXIP and PRIP products."""

from dataclasses import dataclass, field
from typing import Any

from rs_simulator.content import Content
from rs_simulator.stations import StationName


@dataclass(eq=False)
class Downloadable:
    """An OData entity with bytes behind `$value`: its JSON fields (without Checksum) and its content."""

    fields: dict[str, Any]
    content: Content
    satellite: str

    @property
    def id(self) -> str:
        return str(self.fields["Id"])

    @property
    def name(self) -> str:
        return str(self.fields["Name"])

    def checksum(self) -> list[dict[str, str]]:
        """The OData `Checksum` value (hashes the content now unless `content.md5_known`)."""
        return [
            {
                "Algorithm": "MD5",
                "Value": self.content.md5_hex(),
                "ChecksumDate": self.fields["PublicationDate"],
            }
        ]


@dataclass(eq=False)
class ChunkFile(Downloadable):
    """A CADIP DSDB chunk file (`Files` entity set)."""


@dataclass(eq=False)
class Product(Downloadable):
    """An AUXIP or PRIP product (`Products` entity set); `fields` include `Attributes`."""


@dataclass(eq=False)
class Session:
    """A CADIP downlink session (`Sessions` entity set) and its chunk files."""

    fields: dict[str, Any]
    files: list[ChunkFile] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.fields["Id"])

    @property
    def session_id(self) -> str:
        return str(self.fields["SessionId"])

    @property
    def satellite(self) -> str:
        return str(self.fields["Satellite"])

    @property
    def total_size(self) -> int:
        return sum(f.content.size for f in self.files)


class Catalogue:
    """Entities of every station, in publication order, with id lookups for downloads.

    Entities are never changed once added, so routes may iterate these lists freely; additions come only
    from the event loop (the `/_catalogue` controls), so no lock is needed.
    """

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        self.files: list[ChunkFile] = []
        self.products: dict[StationName, list[Product]] = {StationName.AUXIP: [], StationName.PRIP: []}
        self._sessions_by_session_id: dict[str, Session] = {}
        self._downloads: dict[StationName, dict[str, Downloadable]] = {s: {} for s in StationName}
        self._product_names: dict[StationName, dict[str, Product]] = {
            StationName.AUXIP: {},
            StationName.PRIP: {},
        }

    def add_session(self, session: Session) -> None:
        """Add a session and its files (the caller checked that its SessionId is new)."""
        self.sessions.append(session)
        self._sessions_by_session_id[session.session_id] = session
        for chunk in session.files:
            self.files.append(chunk)
            self._downloads[StationName.CADIP][chunk.id] = chunk

    def session_by_session_id(self, session_id: str) -> Session | None:
        return self._sessions_by_session_id.get(session_id)

    def add_product(self, station: StationName, product: Product) -> None:
        """Add a product to AUXIP or PRIP (the caller checked that its Name is new)."""
        self.products[station].append(product)
        self._product_names[station][product.name] = product
        self._downloads[station][product.id] = product

    def product_by_name(self, station: StationName, name: str) -> Product | None:
        return self._product_names[station].get(name)

    def downloadable(self, station: StationName, entity_id: str) -> Downloadable | None:
        """The file or product behind `/{station}/Files(<Id>)/$value` or `/Products(<Id>)/$value`."""
        return self._downloads[station].get(entity_id)
