"""Project errors, grouped by what a retry can do about them.

At an activity boundary every `OnDemandError` becomes a Temporal `ApplicationError` whose `type` is the class
name and whose `non_retryable` flag comes from the class, so workflows and operators decide on the type alone.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

MAX_ERROR_TEXT = 2000
"""Station and catalog bodies can be large; error text is capped before it enters a workflow history."""


def cap(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " …(truncated)"


class OnDemandError(Exception):
    """Base class of the project's errors; `non_retryable` defaults per class and may be set per instance."""

    non_retryable: bool = False


class InvalidInputError(OnDemandError):
    """The request can never succeed as given (bad identifier, unsafe name, malformed filter)."""

    non_retryable = True


class NotFoundError(OnDemandError):
    """What the request names does not exist (no such session, collection or product)."""

    non_retryable = True


class ConfigurationError(OnDemandError):
    """The worker is not configured for what the request needs (no station URL, no credentials)."""

    non_retryable = True


class UntrustedLocationError(InvalidInputError):
    """A download URL lies outside every configured station: no token is sent there."""

    def __init__(self, url: str) -> None:
        super().__init__(f"refusing to download {url!r}: it is not below any configured station download URL")


class StationAuthError(OnDemandError):
    """The station refused our credentials: retrying with the same configuration cannot help."""

    non_retryable = True


class StationUnavailableError(OnDemandError):
    """The station answered with a server error or could not be reached; worth retrying."""


class TransferError(OnDemandError):
    """A download broke off or delivered a different number of bytes than announced; worth retrying."""


class ChecksumMismatchError(TransferError):
    """The bytes received do not have the checksum the station announced (corrupted in transit).

    Retried a few times (a flipped bit on the way); corruption that persists means the station holds bad data,
    which no retry fixes: the activity then makes it final.
    """

    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"MD5 of {name!r} is {actual}, the station announced {expected}")


class CatalogError(OnDemandError):
    """The catalog failed or could not be reached; worth retrying."""


class CatalogRejectedError(OnDemandError):
    """The catalog refused what we sent (HTTP 4xx other than a conflict): a retry would be refused again."""

    non_retryable = True


class StorageError(OnDemandError):
    """The object store failed; worth retrying."""


def to_application_error(err: OnDemandError) -> ApplicationError:
    return ApplicationError(cap(str(err)), type=type(err).__name__, non_retryable=err.non_retryable)


class ErrorTranslationInterceptor(Interceptor):
    """Worker interceptor: project errors leave every activity as typed `ApplicationError`s."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TranslatingActivityInbound(next)


class _TranslatingActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except OnDemandError as err:
            # The error's place and cause, without a second copy of its message in the chain (a failure must stay
            # small: see client.CompactFailureConverter).
            raise to_application_error(err).with_traceback(err.__traceback__) from err.__cause__ or err.__context__
