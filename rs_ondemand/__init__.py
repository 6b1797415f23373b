"""Copernicus Reference System on-demand processing as Temporal durable workflows."""
