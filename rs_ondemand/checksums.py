"""MD5 checksums as stations give them (hex) and as STAC's file extension writes them (multihash hex)."""

from __future__ import annotations

import re

_MD5_MULTIHASH_PREFIX = "d50110"  # multihash: varint code 0xd5 (md5), length 0x10
_HEX32 = re.compile(r"[0-9a-f]{32}")


def md5_multihash(md5_hex: str) -> str:
    return _MD5_MULTIHASH_PREFIX + md5_hex.lower()


def md5_from_checksum(value: str | None) -> str | None:
    """The hex MD5 in a `file:checksum` multihash or a plain hex digest; None for other algorithms."""
    if not value:
        return None
    value = value.lower()
    if value.startswith(_MD5_MULTIHASH_PREFIX) and _HEX32.fullmatch(value[len(_MD5_MULTIHASH_PREFIX) :]):
        return value[len(_MD5_MULTIHASH_PREFIX) :]
    return value if _HEX32.fullmatch(value) else None
