"""Task-table errors and lenient pydantic models of the EOPF task table (rs-reference.md §1.3)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from rs_ondemand.errors import InvalidInputError

IO_SECTIONS = ("input", "adfs", "output")
"""Keys of the dict-shaped `io` (TaskTable.schema.json, the mockup of rs-client-libraries), in merge order."""


class TaskTableError(InvalidInputError, ValueError):
    """The task table, or a request against it, cannot be used (the original's `TaskTableError(ValueError)`).

    Also an `InvalidInputError`, so it leaves an activity as a non-retryable `ApplicationError`: retrying with
    the same table and request gives the same answer.
    """


def normalise_io(io: Any) -> list[Any] | None:
    """`io` as one flat list, or None when it is neither a list nor a dict.

    The CPM-3 schema has a list; the newer schema has `{input[], adfs[], output[]}`. The seed's `build_unit_list`
    rejected the dict shape (rs-reference.md §1.3, open question 1); we concatenate its sections, known ones
    first, then any other list-valued section, so unknown keys are not lost.
    """
    if isinstance(io, list):
        return io
    if not isinstance(io, dict):
        return None
    sections = [key for key in IO_SECTIONS if key in io] + [key for key in io if key not in IO_SECTIONS]
    entries: list[Any] = []
    for key in sections:
        if not isinstance(io[key], list):
            raise TaskTableError(f'Invalid "io" section "{key}" in task table: expected a list.')
        entries.extend(io[key])
    return entries


def _io_as_list(value: Any) -> Any:
    normalised = normalise_io(value)
    return value if normalised is None else normalised


class _Lenient(BaseModel):
    """Unknown keys are kept: real task tables carry more than the schema says (reference-data README)."""

    model_config = ConfigDict(extra="allow")


class QueryCall(_Lenient):
    """The query an ADF alternative runs: a `queries[]` name and its parameter values."""

    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class Alternative(_Lenient):
    """One way to find an ADF; tried by increasing `order` (our fix of open question 3)."""

    order: int | None = None
    timeout_seconds: int = 0
    """0 means no limit (rs-reference.md §1.5 step 6)."""
    query: QueryCall


class IoEntry(_Lenient):
    """Full description of a product or ADF in `io`; ADFs carry `alternatives`."""

    name: str
    type: str | None = None
    store_type: str | None = None
    engine: str | None = None
    opening_mode: str | None = None
    alternatives: list[Alternative] = Field(default_factory=list)


class UnitItem(_Lenient):
    """An input, ADF or output as a unit declares it (name, mode, mandatory; outputs may add `regex`)."""

    name: str
    mode: str = "always"
    mandatory: bool
    regex: str | None = None


class Unit(_Lenient):
    """A processing unit: a Python module run by the EOPF trigger."""

    name: str
    module: str
    input_products: list[UnitItem] = Field(default_factory=list)
    input_adfs: list[UnitItem] = Field(default_factory=list)
    output_products: list[UnitItem] = Field(default_factory=list)


class Query(_Lenient):
    """A named STAC search whose `stac` fragment holds `{parameter}` placeholders."""

    name: str
    parameters: list[str] = Field(default_factory=list)
    stac: dict[str, Any]


class Step(_Lenient):
    """A pipeline step; older tables use `order` where newer ones use `step_id`."""

    unit_name: str
    step_id: int | None = None
    order: int | None = None
    input_products: dict[str, str] = Field(default_factory=dict)
    output_products: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, Any] | None = None


class Pipeline(_Lenient):
    """A named, ordered chain of units."""

    name: str
    description: str = ""
    steps: list[Step] = Field(default_factory=list)


class TaskTable(_Lenient):
    """A whole task table; `io` is always a flat list here, whatever its shape in the file."""

    units: list[Unit]
    io: Annotated[list[IoEntry], BeforeValidator(_io_as_list)]
    pipelines: list[Pipeline] = Field(default_factory=list)
    queries: list[Query] = Field(default_factory=list)
    external_variables: list[str] = Field(default_factory=list)

    def io_entry(self, name: str) -> IoEntry | None:
        """The `io` description of `name`; the last one wins, as in the original's index."""
        return next((entry for entry in reversed(self.io) if entry.name == name), None)

    def query(self, name: str) -> Query | None:
        """The query named `name`; the last one wins, as in the original's `build_cql2_json`."""
        return next((query for query in reversed(self.queries) if query.name == name), None)


def parse_tasktable(data: Any) -> TaskTable:
    """Validate a task table dict into the typed model, reporting problems as one `TaskTableError`."""
    try:
        return TaskTable.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}" for error in err.errors()[:5]
        )
        more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
        raise TaskTableError(f"Invalid task table: {problems}{more}") from err
