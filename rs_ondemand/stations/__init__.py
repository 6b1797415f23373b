"""Stations as configured (the registry), and the pure parts of speaking OData to them: query building and the
OData → STAC mapping. Their HTTP side effects live in `activities/`."""
