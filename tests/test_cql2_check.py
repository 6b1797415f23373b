"""`check_cql2`: the one validation of the filters the project sends (cql2 library, successes cached)."""

from __future__ import annotations

import pytest

from rs_ondemand.cql2_check import Cql2Error, check_cql2

VALID = {"op": "=", "args": [{"property": "product:type"}, "S01SIWSLC"]}


def test_valid_json_and_text_filters_pass() -> None:
    check_cql2(VALID)
    check_cql2(dict(reversed(VALID.items())))  # the same filter, keys in another order
    check_cql2("\"product:type\" = 'S01SIWSLC'")


@pytest.mark.parametrize("bad", [{"op": "=", "args": [{"property": "a"}]}, {"op": "and"}, "a = "])
def test_an_invalid_filter_is_refused_every_time(bad: dict[str, object] | str) -> None:
    for _ in range(2):  # a failure is never cached as a success
        with pytest.raises(Cql2Error):
            check_cql2(bad)
