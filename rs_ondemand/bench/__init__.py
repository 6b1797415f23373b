"""Benchmarks behind `rs-ondemand bench`: measured against the embedded stack, reported as one JSON object."""


class BenchError(RuntimeError):
    """The benchmark could not measure (a run failed or staged something else than expected)."""
