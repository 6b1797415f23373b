"""Processors this deployment knows: their task tables, shipped with the package."""
