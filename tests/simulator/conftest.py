"""Fixtures of the simulator tests: a real `python -m rs_simulator` on a free loopback port per module."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.simulator_server import RunningSimulator, run_simulator


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """A simulator with default settings (random credentials, as the stack passes), one per test module."""
    with run_simulator(tmp_path_factory.mktemp("simulator")) as running:
        yield running


@pytest.fixture
async def client(simulator: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.url, timeout=60) as http:
        yield http
