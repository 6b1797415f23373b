"""Operator inputs are validated at the boundary with messages that quote the bad value."""

import pytest
from pydantic import ValidationError

from rs_ondemand.models.staging import CadipStagingInput

VALID = {
    "env": {"owner_id": "alice"},
    "cadip_collection_identifier": "cadip",
    "session_identifier": "S1A_20241114143038056552",
    "catalog_collection_identifier": "s1-cadip-session",
}


def test_cadip_input_accepts_the_original_shape() -> None:
    request = CadipStagingInput.model_validate(VALID)
    assert request.env.owner_id == "alice"
    assert request.session_identifier == "S1A_20241114143038056552"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_identifier", "../../etc/passwd"),
        ("session_identifier", "a/b"),
        ("catalog_collection_identifier", ""),
        ("catalog_collection_identifier", "with space"),
        ("cadip_collection_identifier", "x" * 300),
    ],
)
def test_cadip_input_rejects_unsafe_identifiers(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CadipStagingInput.model_validate({**VALID, field: value})
    assert field in str(caught.value)


def test_cadip_input_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="session_id"):
        CadipStagingInput.model_validate({**VALID, "session_id": "typo"})


@pytest.mark.parametrize("owner", ["", "a/b", "-lead"])
def test_owner_must_be_a_plain_name(owner: str) -> None:
    with pytest.raises(ValidationError, match="owner_id"):
        CadipStagingInput.model_validate({**VALID, "env": {"owner_id": owner}})
