"""Tests of the station simulator (`rs_simulator`), against real uvicorn processes."""
