"""Task-table errors and the `io` section's two shapes.

Task tables are read as the JSON they are, by `units.build_unit_list`: real tables are imperfect (mixed
`step_id`/`order`, `io` as a list or an object, entries that are not named objects, duplicated names), and the
original's messages name each problem; a typed model would refuse what the original accepts, or need the same rules
written twice."""

from __future__ import annotations

from typing import Any

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

    The CPM-3 schema has a list; the newer schema has `{input[], adfs[], output[]}`. The original's `build_unit_list`
    rejected the dict shape (docs/rs-compatibility.md#q1); we concatenate its sections, known ones
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
