"""Session fixtures shared by the whole suite: the real embedded stack and its environment variables."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from rs_ondemand.stack import Stack, StackInfo
from rs_ondemand.stack.watchdog import guarded


def simulator_available() -> bool:
    """Whether `python -m rs_simulator` can run (the package is written in parallel with the launcher)."""
    try:
        return importlib.util.find_spec("rs_simulator.__main__") is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """The real stack (Temporal, S3, PostgreSQL + pgstac catalog, simulator), once per session.

    Free ports only, and no worker: tests run their own in-process workers on queues of their own.
    """
    state_dir = tmp_path_factory.mktemp("stack")
    launcher = Stack(
        state_dir,
        with_worker=False,
        with_simulator=simulator_available(),
        prefer_default_ports=False,
        notify=lambda message: None,
    )
    # purge: the PostgreSQL cluster may live outside the temporary dir (/var/tmp); logs stay for post-mortems.
    # The guard's watchdog also takes the stack down if pytest is killed before its teardown.
    with guarded(launcher, purge=True):
        yield launcher.up()


@pytest.fixture(scope="session")
def stack_env(stack: StackInfo) -> Iterator[dict[str, str]]:
    """The stack's env file as a dict, also set in `os.environ` for the session (settings read it there)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in stack.env.items():
            patch.setenv(key, value)
        # Settings fall back to `$RS_STACK_DIR/env`: point it at this stack, never at a developer's ./.stack.
        patch.setenv("RS_STACK_DIR", str(stack.state_dir))
        yield dict(stack.env)
