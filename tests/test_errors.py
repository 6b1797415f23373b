"""Project errors leave activities as typed ApplicationErrors whose retryability comes from the class."""

import socket
from typing import Any, cast

import httpx
import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from rs_ondemand.client import DATA_CONVERTER, STACK_TRACE_CHARS
from rs_ondemand.errors import (
    CatalogError,
    ChecksumMismatchError,
    NotFoundError,
    StationUnavailableError,
    _TranslatingActivityInbound,
    cap,
    to_application_error,
)


def test_application_error_keeps_type_and_retryability() -> None:
    missing = to_application_error(NotFoundError("No Cadip session found for id='X'"))
    assert (missing.type, missing.non_retryable, missing.message) == (
        "NotFoundError",
        True,
        "No Cadip session found for id='X'",
    )
    assert to_application_error(StationUnavailableError("503")).non_retryable is False


def test_a_retryable_error_can_be_made_final() -> None:
    err = ChecksumMismatchError("chunk.raw", "aa", "bb")
    assert to_application_error(err).non_retryable is False
    err.non_retryable = True
    assert to_application_error(err).non_retryable is True
    assert ChecksumMismatchError("x", "a", "b").non_retryable is False  # the class default is untouched


def test_long_error_text_is_capped() -> None:
    assert len(cap("x" * 10_000)) <= 2000
    assert cap("short") == "short"


async def test_a_failure_an_operator_reads_stays_under_the_servers_limit() -> None:
    """A retrying activity's last failure is shown by the server only below 4 KB ("Failure exceeds size limit."
    otherwise). A catalog connection error, as it leaves an activity: our message once, where it was raised, the
    library's error under it, every stack trace cut to its innermost frames."""

    async def reach_the_catalog() -> None:
        try:
            async with httpx.AsyncClient() as http:
                await http.get(f"http://127.0.0.1:{closed_port()}/collections")
        except httpx.HTTPError as err:
            raise CatalogError(f"catalog unreachable: {err}") from err

    class Activity:
        async def execute_activity(self, input: Any) -> Any:
            await reach_the_catalog()

    with pytest.raises(ApplicationError) as raised:
        await _TranslatingActivityInbound(cast(Any, Activity())).execute_activity(cast(Any, None))
    failure = Failure()
    DATA_CONVERTER.failure_converter.to_failure(raised.value, DATA_CONVERTER.payload_converter, failure)

    assert failure.ByteSize() < 4096, failure
    assert failure.message.startswith("catalog unreachable: ")
    assert failure.application_failure_info.type == "CatalogError"
    assert "reach_the_catalog" in failure.stack_trace  # where our error was raised
    assert failure.cause.message and failure.cause.message in failure.message  # the library's error, once
    assert not failure.cause.cause.message.startswith("catalog unreachable")
    chain = [failure, failure.cause, failure.cause.cause]
    assert all(len(f.stack_trace) <= STACK_TRACE_CHARS + 60 for f in chain)
    assert any(f.stack_trace.startswith("(outer frames left out") for f in chain)  # httpx's frames were cut


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
