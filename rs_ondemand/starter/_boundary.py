"""What every command does with bad input: one line on stderr, exit code 2, nothing started.

Exit codes of `rs-ondemand`: 0 done; 1 the request ran and failed (or the stack is broken); 2 the input was
refused before anything started (as click's own usage errors); 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

INVALID_REQUEST = 2
"""Exit code of a request refused before anything started."""


class Refused(Exception):
    """Bad input: the command stops before doing anything; `main` prints the message in one line, exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def refuse(message: str) -> NoReturn:
    raise Refused(message)


def one_line(err: BaseException) -> str:
    """An error in one line: pydantic's every problem with its field; a workflow's failure with its root cause."""
    from pydantic import ValidationError
    from temporalio.client import WorkflowFailureError

    from rs_ondemand import error_text

    if isinstance(err, ValidationError):
        return f"invalid request: {error_text.one_line(err)}"
    if isinstance(err, WorkflowFailureError):
        from rs_ondemand.starter._run import failure_text

        return f"request failed: {failure_text(err)}"
    return error_text.one_line(err)


@contextmanager
def refused_if_invalid() -> Iterator[None]:
    """A request validated inside is refused, with every problem in one line, if pydantic finds it invalid."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as err:
        refuse(one_line(err))
