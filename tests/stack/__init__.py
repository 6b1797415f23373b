"""Tests of the embedded stack launcher."""
