"""Test controls on the simulator root: `/health`, `/_faults`, `/_stats` and `/_catalogue` additions."""

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rs_simulator.cadip_data import requested_session
from rs_simulator.errors import SimulatorError
from rs_simulator.faults import FaultRequest
from rs_simulator.product_data import requested_products
from rs_simulator.state import SimulatorState
from rs_simulator.stations import StationName

SATELLITE_PATTERN = r"^S\d[A-Z_]$"


class SessionRequest(BaseModel):
    """Body of `POST /_catalogue/sessions`."""

    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    """Default: `<satellite>_<DownlinkStart YYYYmmddHHMMSS><orbit 6 digits>` as real sessions."""
    satellite: str = Field(default="S1A", pattern=SATELLITE_PATTERN)
    channels: int = Field(default=2, ge=1, le=63)
    """Up to 63: the channel is the 6-bit virtual channel id of the CADUs."""
    chunks_per_channel: int = Field(ge=1, le=100_000)
    chunk_size: int | None = Field(default=None, ge=1, le=1 << 40)
    """Bytes of every chunk (all full); default: the simulator's `chunk_size`."""
    publication_date: datetime | None = None
    """Session PublicationDate; default: a date in 2025 derived from the other parameters."""
    missing_final_block: list[int] = Field(default_factory=list)
    """Channels whose last chunk is published without `FinalBlock: true`: an incomplete session."""

    @model_validator(mode="after")
    def _known_channels(self) -> "SessionRequest":
        if any(not 1 <= channel <= self.channels for channel in self.missing_final_block):
            raise ValueError(f"missing_final_block names channels outside 1..{self.channels}")
        return self


class ProductsRequest(BaseModel):
    """Body of `POST /_catalogue/products`."""

    model_config = ConfigDict(extra="forbid")

    station: Literal["prip", "auxip"]
    product_type: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    count: int = Field(default=1, ge=1, le=100_000)
    start: datetime
    """ContentDate/Start of the first product."""
    step_seconds: float = Field(default=0.0, ge=0)
    """Offset between the starts of consecutive products."""
    validity_seconds: float = Field(gt=0)
    """ContentDate/End minus ContentDate/Start of each product."""
    size: int | None = Field(default=None, ge=1, le=1 << 40)
    """Bytes of noise content; default: an EOF document for AUXIP orbit types, else `product_size`."""
    satellite: str = Field(default="S1A", pattern=SATELLITE_PATTERN)


def control_router(state: SimulatorState) -> APIRouter:
    """Routes outside any station: no auth, no faults, not counted."""
    router = APIRouter(tags=["test controls"])
    catalogue = state.catalogue

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if not state.settings.test_controls:
        return router  # a simulator in a shared deployment: nobody may inject faults or read its counters

    @router.get("/_faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.state()

    @router.put("/_faults")
    async def put_faults(request: FaultRequest) -> dict[str, Any]:
        state.faults.configure(request)
        return state.faults.state()

    @router.delete("/_faults")
    async def delete_faults() -> dict[str, Any]:
        state.faults.clear()
        return state.faults.state()

    @router.get("/_stats")
    async def get_stats() -> dict[str, Any]:
        return state.stats.snapshot()

    @router.delete("/_stats")
    async def delete_stats() -> dict[str, Any]:
        state.stats.reset()
        return state.stats.snapshot()

    @router.delete("/_tokens")
    async def revoke_tokens(station: str | None = None) -> dict[str, int]:
        """Revoke every token (of `station`, or of every station): the next request with one gets 401."""
        if station is not None and station not in state.tokens:
            raise SimulatorError(422, f"no such station: {station} (stations: {', '.join(state.tokens)})")
        names = [station] if station is not None else list(state.tokens)
        return {name: state.tokens[name].revoke_all() for name in names}

    @router.post("/_catalogue/sessions")
    async def add_session(request: SessionRequest) -> JSONResponse:
        session = requested_session(
            state.settings.seed,
            satellite=request.satellite,
            channels=request.channels,
            chunks_per_channel=request.chunks_per_channel,
            chunk_size=request.chunk_size or state.settings.chunk_size,
            session_id=request.session_id,
            publication_date=request.publication_date,
            missing_final_block=tuple(sorted(set(request.missing_final_block))),
        )
        existing = catalogue.session_by_session_id(session.session_id)
        if existing is not None and existing.fields != session.fields:
            raise SimulatorError(409, f"session {session.session_id} exists with other parameters")
        if existing is None:
            catalogue.add_session(session)
        body = {"session": session.fields, "total_size": session.total_size, "file_count": len(session.files)}
        return JSONResponse(body, status_code=200 if existing else 201)

    @router.post("/_catalogue/products")
    async def add_products(request: ProductsRequest) -> JSONResponse:
        station = StationName(request.station)
        products = requested_products(
            state.settings.seed,
            station,
            product_type=request.product_type,
            count=request.count,
            start=request.start,
            step_seconds=request.step_seconds,
            validity_seconds=request.validity_seconds,
            satellite=request.satellite,
            size=request.size,
            product_size=state.settings.product_size,
        )
        added = 0
        for product in products:
            if catalogue.product_by_name(station, product.name) is None:
                catalogue.add_product(station, product)
                added += 1
        listed = [{k: p.fields[k] for k in ("Id", "Name", "ContentLength", "PublicationDate")} for p in products]
        body = {"products": listed, "added": added, "total_size": sum(p.content.size for p in products)}
        return JSONResponse(body, status_code=201 if added else 200)

    return router
