"""Paging through one query (OData or STAC) evaluates it once, and a catalogue that grew is searched again."""

from dataclasses import replace
from typing import Any

import cql2
import pytest

from rs_simulator import stac_search
from rs_simulator.odata_query import apply_options, parse_options
from rs_simulator.query_cache import QueryCache
from rs_simulator.settings import SimulatorSettings
from rs_simulator.stac_mapping import MAPPINGS
from rs_simulator.stac_search import SearchRequest, search
from rs_simulator.state import seeded_catalogue
from rs_simulator.stations import StationName

FIELDS = {"Name", "Size"}


def _options(skip: int, top: int, filter_text: str = "Size ge 10", orderby: str = "Name desc") -> Any:
    params = {"$filter": filter_text, "$orderby": orderby, "$skip": str(skip), "$top": str(top)}
    return parse_options(params, FIELDS, {}, None, FIELDS)


class Counted:
    """`fields_of` that counts how many entities were read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self, entity: dict[str, Any]) -> dict[str, Any]:
        self.reads += 1
        return entity


def _entities(count: int) -> list[dict[str, Any]]:
    return [{"Name": f"p{i:03d}", "Size": i} for i in range(count)]


def test_pages_of_one_query_read_the_entities_once_and_match_the_uncached_pages() -> None:
    entities = _entities(100)
    cache: QueryCache[dict[str, Any]] = QueryCache()
    fields = Counted()
    pages = [apply_options(entities, _options(skip, 25), fields, cache) for skip in range(0, 100, 25)]
    first_query_reads = fields.reads
    assert first_query_reads > 0
    uncached = [apply_options(entities, _options(skip, 25), lambda e: e) for skip in range(0, 100, 25)]
    assert pages == uncached
    assert [total for _, total in pages] == [90] * 4
    assert [e["Name"] for page, _ in pages for e in page] == [f"p{i:03d}" for i in range(99, 9, -1)]
    # The later pages came from the first page's result: no entity was read again.
    assert fields.reads == first_query_reads


def test_another_filter_or_order_is_its_own_query() -> None:
    entities = _entities(50)
    cache: QueryCache[dict[str, Any]] = QueryCache()
    by_name, _ = apply_options(entities, _options(0, 5), lambda e: e, cache)
    by_size, _ = apply_options(entities, _options(0, 5, orderby="Size asc"), lambda e: e, cache)
    small, total = apply_options(entities, _options(0, 5, filter_text="Size lt 3"), lambda e: e, cache)
    assert [e["Name"] for e in by_name] == ["p049", "p048", "p047", "p046", "p045"]
    assert [e["Name"] for e in by_size] == ["p010", "p011", "p012", "p013", "p014"]
    assert (total, [e["Name"] for e in small]) == (3, ["p002", "p001", "p000"])


def test_an_entity_added_after_a_page_is_in_the_next_page() -> None:
    entities = _entities(20)
    cache: QueryCache[dict[str, Any]] = QueryCache()
    _, total = apply_options(entities, _options(0, 5), lambda e: e, cache)
    entities.append({"Name": "z-new", "Size": 500})
    page, grown = apply_options(entities, _options(0, 5), lambda e: e, cache)
    assert (total, grown) == (10, 11)
    assert page[0]["Name"] == "z-new"


def test_the_cache_keeps_only_its_last_queries() -> None:
    entities = _entities(30)
    cache: QueryCache[dict[str, Any]] = QueryCache(queries=2)
    fields = Counted()
    for bound in (1, 2, 3):
        apply_options(entities, _options(0, 5, filter_text=f"Size ge {bound}"), fields, cache)
    reads = fields.reads
    apply_options(entities, _options(0, 5, filter_text="Size ge 3"), fields, cache)  # still kept
    assert fields.reads == reads
    apply_options(entities, _options(0, 5, filter_text="Size ge 1"), fields, cache)  # dropped: read again
    assert fields.reads > reads


def test_stac_search_pages_evaluate_the_filter_once_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = MAPPINGS[StationName.AUXIP]
    records = list(mapping.records(seeded_catalogue(SimulatorSettings())))
    evaluated = 0
    matches = stac_search._matches

    def counted(*args: Any) -> bool:
        nonlocal evaluated
        evaluated += 1
        return matches(*args)

    monkeypatch.setattr(stac_search, "_matches", counted)
    query = SearchRequest(
        collections=("auxip",),
        filter=cql2.Expr("\"product:type\" = 'AUX_RESORB'"),
        sortby=(("created", True),),
        limit=50,
    )
    cache: QueryCache[stac_search.Hit] = QueryCache()
    pages = [search(mapping, records, replace(query, offset=offset), cache) for offset in range(0, 400, 50)]
    assert evaluated == len(records)
    uncached = [search(mapping, records, replace(query, offset=offset)) for offset in range(0, 400, 50)]
    assert pages == uncached
    total = pages[0][1]
    assert 50 < total <= 400 and sum(len(page) for page, _ in pages) == total

    records.append(pages[0][0][0].record)  # the catalogue grew: the next page is searched again, over every record
    evaluated = 0
    _, grown = search(mapping, records, replace(query, offset=50), cache)
    assert evaluated == len(records) and grown == total + 1
