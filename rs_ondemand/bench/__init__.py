"""Benchmarks behind `rs-ondemand bench`: measured against the embedded stack, reported as one JSON object."""
