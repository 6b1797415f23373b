"""Pure DPR processing core: task tables, the processing-unit list and ADF queries (no I/O, no Temporal)."""

from rs_ondemand.dpr.queries import AuxCollectionError, QueryError, aux_collection, stac_query
from rs_ondemand.dpr.tasktable import TaskTableError
from rs_ondemand.dpr.units import build_unit_list

__all__ = [
    "AuxCollectionError",
    "QueryError",
    "TaskTableError",
    "aux_collection",
    "build_unit_list",
    "stac_query",
]
