"""An MD5 whose state can be saved in heartbeat details and restored on a retry (OpenSSL's MD5_CTX).

`hashlib` objects cannot be serialized, yet a transfer resumed after a worker crash must keep verifying the
whole file against the station's MD5 without reading the already uploaded parts again. OpenSSL's MD5_CTX is a
plain 92-byte struct, so its bytes are the state. The functions are deprecated in OpenSSL 3 but still exported;
where they are missing, `available()` is False and transfers simply restart from the first byte.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools

_CTX_SIZE = 92  # MD5_LONG A,B,C,D,Nl,Nh (6 * 4) + data[16] (64) + num (4)


@functools.cache
def _libcrypto() -> ctypes.CDLL | None:
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for fn in (lib.MD5_Init, lib.MD5_Update, lib.MD5_Final):
                fn.restype = ctypes.c_int
            lib.MD5_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            return lib
        except (OSError, AttributeError):
            continue
    return None


def available() -> bool:
    return _libcrypto() is not None


class ResumableMD5:
    """MD5 with `state()` / `from_state()`; same results as hashlib.md5."""

    def __init__(self) -> None:
        lib = _libcrypto()
        if lib is None:
            raise RuntimeError("OpenSSL MD5 functions are not available")
        self._lib = lib
        self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
        lib.MD5_Init(self._ctx)

    def update(self, data: bytes) -> None:
        self._lib.MD5_Update(self._ctx, data, len(data))

    def hexdigest(self) -> str:
        final = ctypes.create_string_buffer(_CTX_SIZE)
        ctypes.memmove(final, self._ctx, _CTX_SIZE)  # finalising consumes the context: work on a copy
        digest = ctypes.create_string_buffer(16)
        self._lib.MD5_Final(digest, final)
        return digest.raw.hex()

    def state(self) -> str:
        return base64.b64encode(self._ctx.raw).decode()

    @classmethod
    def from_state(cls, state: str) -> ResumableMD5:
        md5 = cls()
        raw = base64.b64decode(state)
        if len(raw) != _CTX_SIZE:
            raise ValueError("not an MD5 state")
        ctypes.memmove(md5._ctx, raw, _CTX_SIZE)
        return md5
