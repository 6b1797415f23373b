"""CADIP / AUXIP / PRIP station simulator: a test means, never imported by product code."""
