"""Errors in one line, as operators read them. Pure (no I/O, nothing but the error): the command line and the
workflows (a signal's body) format bad input alike."""

from __future__ import annotations

import pydantic


def one_line(err: BaseException, whole: str = "input") -> str:
    """pydantic's every problem as `field: message; …` (`whole` names the field of a problem with the whole
    value); anything else as its type and the first line of its text."""
    if isinstance(err, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in err.errors())
    first = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
