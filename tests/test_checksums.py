"""MD5 multihash round trips as STAC's file extension writes them."""

import hashlib

import pytest

from rs_ondemand.checksums import md5_from_checksum, md5_multihash


def test_md5_multihash_round_trip() -> None:
    digest = hashlib.md5(b"cadu").hexdigest()
    assert md5_multihash(digest) == "d50110" + digest
    assert md5_from_checksum(md5_multihash(digest)) == digest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("D50110" + "AB" * 16, "ab" * 16),  # case-insensitive
        ("ab" * 16, "ab" * 16),  # a plain hex digest, as OData stations give it
        ("1220" + "ab" * 32, None),  # sha2-256 multihash: not an MD5
        ("d50110abc", None),
        ("", None),
        (None, None),
    ],
)
def test_md5_from_checksum_accepts_only_md5(value: str | None, expected: str | None) -> None:
    assert md5_from_checksum(value) == expected
