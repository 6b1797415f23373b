"""`$value` downloads: HTTP byte ranges, streaming with station counters, and injected download faults."""

import asyncio
import logging
import random
import re
from collections.abc import AsyncGenerator

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from rs_simulator.content import READ_PIECE, Content, TextContent
from rs_simulator.errors import SimulatorError
from rs_simulator.faults import DownloadFault
from rs_simulator.stats import StationStats

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_FLIPPED_BYTES = 8


class InjectedReset(ConnectionResetError):
    """Raised inside a download body to break the connection on purpose (`reset_rate`)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The `[start, end)` asked by a `Range` header, or None to send the whole content.

    Multiple ranges and other units are ignored (RFC 9110 lets a server answer 200 with everything).

    Raises:
        SimulatorError: 416 when the range starts beyond the content.
    """
    match = _RANGE.match((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    unsatisfiable = SimulatorError(416, "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
    if not first:  # suffix range: the last N bytes
        if int(last) == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - int(last)), size
    start = int(first)
    if start >= size or (last and int(last) < start):
        raise unsatisfiable
    return start, size if not last else min(int(last) + 1, size)


def _flip(data: bytes, offset: int, positions: list[int]) -> bytes:
    """Invert the bytes of `data` (which starts at `offset`) found at the absolute `positions`."""
    inside = [p - offset for p in positions if offset <= p < offset + len(data)]
    if not inside:
        return data
    mutable = bytearray(data)
    for p in inside:
        mutable[p] ^= 0xFF
    return bytes(mutable)


class DownloadResponse(StreamingResponse):
    """Streams `[start, end)` of a content, counting bytes and in-flight downloads on the station.

    The in-flight gauge is decremented in a `finally`, so a client that disconnects (Starlette cancels
    the stream) or an injected reset still leaves it right.
    """

    def __init__(
        self,
        content: Content,
        start: int,
        end: int,
        partial: bool,
        stats: StationStats,
        fault: DownloadFault,
        rng: random.Random,
    ) -> None:
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start)}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{content.size}"
        self._content = content
        self._stats = stats
        self._complete = True
        self._pieces = self._generate(start, end, fault, rng)
        super().__init__(
            self._pieces,
            status_code=206 if partial else 200,
            headers=headers,
            media_type="application/octet-stream",
        )

    async def _read(self, start: int, end: int) -> bytes:
        if isinstance(self._content, TextContent):
            return self._content.read(start, end)
        # numpy releases the GIL while copying: generating off-loop lets the loop keep writing sockets.
        return await asyncio.to_thread(self._content.read, start, end)

    async def _generate(self, start: int, end: int, fault: DownloadFault, rng: random.Random) -> AsyncGenerator[bytes]:
        length = end - start
        stop = end
        if fault in (DownloadFault.RESET, DownloadFault.TRUNCATE) and length > 0:
            # Break after some bytes (at least one when possible) and always short of the end.
            stop = start + (1 + rng.randrange(length - 1) if length > 1 else 0)
        flips = []
        if fault is DownloadFault.CORRUPT and length > 0:
            flips = sorted(rng.sample(range(start, end), min(MAX_FLIPPED_BYTES, length)))
        position = start
        while position < stop:
            piece_end = min(position + READ_PIECE, stop)
            data = await self._read(position, piece_end)
            yield _flip(data, position, flips) if flips else data
            position = piece_end
        if fault is DownloadFault.RESET:
            raise InjectedReset(f"injected connection reset after {stop - start} of {length} bytes")
        if fault is DownloadFault.TRUNCATE:
            self._complete = False

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self._pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            self._stats.bytes_served += len(piece)
        if self._complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Else the response ends short of Content-Length: uvicorn closes the connection.

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._stats.download_started()
        try:
            await super().__call__(scope, receive, send)
        except InjectedReset as reset:
            # Swallowed here so the log shows one line, not a traceback; the response is left
            # incomplete, so uvicorn drops the connection and the client sees it broken.
            logger.info("%s", reset)
        finally:
            self._stats.download_finished()
            await self._pieces.aclose()


def head_response(content: Content, byte_range: tuple[int, int] | None) -> Response:
    """Headers of a download without its body (HEAD), with the length a GET would send."""
    start, end = byte_range or (0, content.size)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start)}
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{content.size}"
    return Response(status_code=206 if byte_range else 200, headers=headers, media_type="application/octet-stream")
