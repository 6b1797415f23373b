"""The demo's chained units: an L1 made from the L0 product with a processing-parameters ADF, and a quicklook of
any of the demo's products.

They make the demo task table's `demo_chain` pipeline: L0 (from the session) → L1 (from the L0, held in memory
between the two steps) → a quicklook of each (the same unit at two steps). Small on purpose: what they show is
how EOPF chains units, hands products over and writes each step's outputs.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any

import fsspec
import numpy as np
from eopf.computing.abstract import EOProcessingUnit
from eopf.computing.types import AuxiliaryDataFile, MappingAuxiliary, MappingDataType
from eopf.product.conveniences import init_datatree
from eopf.product.datatree_cpm_accessor import CPMProductAccessor  # noqa: F401  (registers the `.cpm` accessor)
from xarray import Dataset, DataTree

L1_INPUT, L1_ADF, L1_OUTPUT = "DEMOL0", "PP2", "DEMOL1"
QUICKLOOK_INPUT, QUICKLOOK_OUTPUT = "PRODUCT", "QUICKLOOK"
SOFTWARE = {"rs_demo_processor": "0.1.0"}


def derived_product(source: DataTree, product_type: str, level: str) -> DataTree:
    """A new product of `product_type` with the source's acquisition (its STAC properties) and its own id."""
    product = init_datatree(product_type)
    product.cpm.product_type = product_type
    source_stac = source.attrs.get("stac_discovery") or {}
    stac = product.attrs["stac_discovery"]
    properties = dict(source_stac.get("properties") or {})
    properties |= {"product:type": product_type, "processing:level": level, "processing:software": SOFTWARE}
    stac["properties"].update(properties)
    stac.update({"type": "Feature", "stac_version": "1.1.0", "geometry": None, "bbox": None})
    return product


def with_id(product: DataTree) -> DataTree:
    # The id EOPF names the written product after (<type>_<start>_<duration>_<orbit>_<timeliness><crc>).
    product.attrs["stac_discovery"]["id"] = product.cpm.product_id()
    return product


def read_adf(adf: AuxiliaryDataFile) -> tuple[str, bytes]:
    """The ADF's file (its path is the file, or the folder of a staged item holding one file): name and bytes."""
    options = dict((adf.adf_params or {}).get("storage_options", {}))
    fs, path = fsspec.core.url_to_fs(adf.path, **options)
    if fs.isdir(path):
        files = sorted(p for p in fs.ls(path, detail=False) if not fs.isdir(p))
        if len(files) != 1:
            raise ValueError(f"ADF {adf.name}: expected one file in {adf.path}, found {len(files)}")
        path = files[0]
    return posixpath.basename(path), fs.cat_file(path)


def one_product(inputs: MappingDataType, name: str) -> DataTree:
    """The unit's input `name`, one product (the chain hands over one DataTree per step)."""
    product = inputs.get(name)
    if not isinstance(product, DataTree):
        raise ValueError(f"input {name!r} must be one product: {sorted(inputs)} were given")
    return product


class _DemoUnit(EOProcessingUnit):
    """What the demo's units share: the processor's name (its task table, `tasktables/demo_default.json`)."""

    PROCESSOR_NAME = "Demo"
    PROCESSOR_VERSION = "0.1.0"
    # No EOPF processing-contract model file ships with the demo: each unit declares its mandatory inputs, and
    # says PROCESSOR_CONTRACT = False itself (EOPF reads it from the class's own attributes, not inherited ones).
    PROCESSOR_CONTRACT = False


class DemoL1Unit(_DemoUnit):
    """L0 → L1: every channel's frame count scaled by a gain drawn from the processing-parameters ADF.

    Input: `DEMOL0` (the L0 product). ADF: `PP2`, any file (its MD5 makes the gain, so that a different file
    gives a visibly different product). Output: `DEMOL1`, of type `product_type` (default `S01DEMOL1`).
    """

    PROCESSOR_LEVEL = "L1"
    PROCESSOR_CONTRACT = False

    @classmethod
    def get_mandatory_input_list(cls, mode: str | None = None, **kwargs: Any) -> list[str]:
        return [L1_INPUT]

    @classmethod
    def get_mandatory_adf_list(cls, mode: str | None = None, **kwargs: Any) -> list[str]:
        return [L1_ADF]

    def run(
        self, inputs: MappingDataType, adfs: MappingAuxiliary | None = None, mode: str | None = None, **kwargs: Any
    ) -> MappingDataType:
        l0 = one_product(inputs, L1_INPUT)
        adf = (adfs or {}).get(L1_ADF)
        if adf is None:
            raise ValueError(f"ADF {L1_ADF!r} is missing: {sorted(adfs or {})} were given")
        name, data = read_adf(adf)
        digest = hashlib.md5(data).hexdigest()
        gain = 1.0 + int(digest[:4], 16) / 0xFFFF / 10  # 1.0 .. 1.1
        frames = l0["measurements/frames"].to_dataset()
        product = derived_product(l0, str(kwargs.get("product_type") or "S01DEMOL1"), "L1")
        product["measurements/calibrated"] = Dataset(
            {"frames_calibrated": ("channel", frames["frame_count"].values * gain)},
            coords={"channel": frames["channel"].values},
            attrs={"gain": gain, "parameters_file": name, "parameters_md5": digest},
        )
        return {L1_OUTPUT: with_id(product)}


class DemoQuicklookUnit(_DemoUnit):
    """Any demo product → a quicklook: its first measurement as a small 8-bit image.

    Input: `PRODUCT`. Output: `QUICKLOOK`, of type `product_type` (a step parameter: the pipeline runs this unit
    on the L0 and on the L1, whose quicklooks need different types to get different names).
    """

    PROCESSOR_LEVEL = "QL"
    PROCESSOR_CONTRACT = False

    @classmethod
    def get_mandatory_input_list(cls, mode: str | None = None, **kwargs: Any) -> list[str]:
        return [QUICKLOOK_INPUT]

    def run(
        self, inputs: MappingDataType, adfs: MappingAuxiliary | None = None, mode: str | None = None, **kwargs: Any
    ) -> MappingDataType:
        source = one_product(inputs, QUICKLOOK_INPUT)
        if not kwargs.get("product_type"):
            raise ValueError("the 'product_type' parameter is missing")
        measurements = [node for node in source["measurements"].subtree if node.ds.data_vars]
        if not measurements:
            raise ValueError(f"product {source.attrs.get('stac_discovery', {}).get('id')} has no measurement")
        values = np.asarray(next(iter(measurements[0].ds.data_vars.values())).values, dtype=float)
        span = float(values.max() - values.min()) or 1.0
        image = np.repeat(((values - values.min()) / span * 255).astype(np.uint8)[np.newaxis, :], 8, axis=0)
        product = derived_product(source, str(kwargs["product_type"]), "QL")
        product["measurements/preview"] = Dataset(
            {"image": (("row", "column"), image)},
            attrs={"source": (source.attrs.get("stac_discovery") or {}).get("id", "")},
        )
        return {QUICKLOOK_OUTPUT: with_id(product)}
