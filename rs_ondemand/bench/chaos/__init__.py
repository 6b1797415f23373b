"""The chaos soak (`rs-ondemand bench chaos`): a mixed workload under a seeded schedule of faults, on a stack of
its own, then the invariants that must always hold (see soak.py)."""
