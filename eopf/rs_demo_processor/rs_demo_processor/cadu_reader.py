"""EOPF reader engine `cadu`: one CADIP chunk file as a DataTree of lazily decoded frame headers.

The tree's `frames` dataset holds one variable, `headers` (frame by field, uint32), whose `field` coordinate names
the AOS header fields (`sync_ok version scid vcid counter`).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import numpy as np
from eopf.store.abstract import EOReader
from eopf.store.reader_registry import EOReaderRegistry
from xarray import Dataset, DataTree

from rs_demo_processor.cadu import CADU_BYTES, HEADER_END, HEADER_FIELDS, as_table, decode_stream
from rs_demo_processor.session import parse_chunk_name


def read_headers(url: str, storage_options: dict[str, Any]) -> np.ndarray:
    """Decode every CADU header of the file at `url`."""
    with fsspec.open(url, "rb", **storage_options) as stream:
        return decode_stream(stream)


def read_header_table(url: str, storage_options: dict[str, Any]) -> np.ndarray:
    """Every CADU header of the file at `url` as an (n, fields) table (runs on a Dask worker)."""
    return as_table(read_headers(url, storage_options))


def file_size(fs: fsspec.AbstractFileSystem, path: str) -> int:
    """The size of the file at `path`.

    On an object store it comes from a listing of the file's folder, which the filesystem keeps (s3fs's listings
    cache): EOPF opens a session's chunk files one after the other, and all but the first then find their size
    there instead of sending a request each (38 HEADs in a row for the demo session).
    """
    if fs.async_impl:
        for entry in fs.ls(posixpath.dirname(path), detail=True):
            if entry["name"] == path and entry.get("size") is not None:
                return int(entry["size"])
    return int(fs.size(path))


def header_count(size: int) -> int:
    """CADUs with a whole header in a file of `size` bytes."""
    return size // CADU_BYTES + (1 if size % CADU_BYTES >= HEADER_END else 0)


@EOReaderRegistry.register("cadu")
class CaduChunkReader(EOReader):
    """Opens a chunk file: only its size is read at once; the frames are decoded when the product is computed.

    The payload's `reader_params.storage_options` (s3fs options) reach `open_datatree` as keyword arguments.
    """

    EXTENSIONS = (".raw",)

    def open_datatree(
        self, filename_or_obj: str | Path | Any, *, storage_options: dict[str, Any] | None = None, **kwargs: Any
    ) -> DataTree:
        url = str(filename_or_obj)
        options = dict(storage_options or {})
        fs, path = fsspec.core.url_to_fs(url, **options)
        size = file_size(fs, path)
        count = header_count(size)
        table = dask.delayed(read_header_table, pure=True)(url, options, dask_key_name=f"decode-cadu-{path}")
        # One array for all the header fields: a file is then a few Dask tasks, not a few per field (a variable
        # per field made the demo session's 38 files 570 tasks, and the scheduling cost more than the decoding).
        headers = da.from_delayed(table, shape=(count, len(HEADER_FIELDS)), dtype=np.uint32)
        frames = Dataset({"headers": (("frame", "field"), headers)}, coords={"field": list(HEADER_FIELDS)})
        file_name = posixpath.basename(path)
        attrs: dict[str, Any] = {"file_name": file_name, "size": size, "cadus": count}
        chunk = parse_chunk_name(file_name)
        if chunk is not None:
            attrs |= {"session_id": chunk.session_id, "channel": chunk.channel, "block": chunk.block}
        return DataTree.from_dict({"/": Dataset(attrs=attrs), "/frames": frames})
