"""Shared building blocks of every contract: the flow environment, safe identifiers, strict operator inputs."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_NAME_LENGTH = 255
_SAFE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")


def check_safe_name(value: str) -> str:
    # These names become S3 key segments, catalog ids and URL segments: no separators, no traversal, no blanks,
    # and none of the URI delimiters the catalog refuses in ids (stac-fastapi-pgstac's `invalid_id_chars`:
    # `: / ? # [ ] @ ! $ & ' ( ) * + , ; =`), so that a name refused there is refused here, before anything runs.
    if not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not a safe identifier: use 1-{MAX_NAME_LENGTH} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return value


SafeName = Annotated[str, AfterValidator(check_safe_name)]
"""An identifier that is safe as one S3 key segment, one URL path segment and a catalog id."""

OwnerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class OperatorInput(BaseModel):
    """Base of inputs typed by operators (CLI JSON, Temporal UI): a misspelt key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FlowEnv(OperatorInput):
    """Who the request runs for, as the original's `FlowEnvArgs`."""

    owner_id: OwnerId
    calling_span: tuple[int, int, bool] | None = None
    """Serialized parent span of the original; accepted for compatibility, tracing uses Temporal headers."""
