"""Project errors leave activities as typed ApplicationErrors whose retryability comes from the class."""

from rs_ondemand.errors import (
    ChecksumMismatchError,
    NotFoundError,
    StationUnavailableError,
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
