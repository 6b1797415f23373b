"""What the EOPF environment has: the processors it can run and the task tables they serve.

One Python process of the EOPF venv (`rs_eopf_hooks.processors`) imports every unit module the shipped task tables
name, and every processor declared by an `rs_ondemand.processors` entry point, and answers in JSON. It costs an
EOPF import (seconds), so a worker asks once, in the background from its start (`EopfProcessors`), and
`rs-ondemand processors list` asks when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from rs_ondemand.activities.eopf_process import inherited_environment
from rs_ondemand.dpr.registry import ProcessorInfo, processor_catalog, shipped_units

log = logging.getLogger(__name__)

DISCOVERY_MODULE = "rs_eopf_hooks.processors"
DISCOVERY_TIMEOUT_S = 180.0


class EopfEnvironmentError(RuntimeError):
    """The EOPF environment did not answer (crashed, timed out, printed no answer)."""


async def ask_eopf_environment(executable: Path, *, extra_env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The EOPF environment's answer about the shipped processors and the ones it declares; None when there is
    no EOPF environment at `executable` (the `eopf` command of its venv). A cancel stops the question.

    Raises:
        EopfEnvironmentError: it exists but did not answer.
    """
    python = executable.with_name("python")
    if not os.access(executable, os.X_OK) or not os.access(python, os.X_OK):
        return None
    question = json.dumps({"candidates": shipped_units()}).encode()
    proc = await asyncio.create_subprocess_exec(
        str(python),
        "-m",
        DISCOVERY_MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=inherited_environment() | (extra_env or {}),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(question), DISCOVERY_TIMEOUT_S)
    except TimeoutError as timeout:
        raise EopfEnvironmentError(
            f"{python} -m {DISCOVERY_MODULE} did not answer in {DISCOVERY_TIMEOUT_S:g} s"
        ) from timeout
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise EopfEnvironmentError(
            f"{python} -m {DISCOVERY_MODULE} failed (exit code {proc.returncode}): "
            f"{err.decode(errors='replace').strip()[-500:]}"
        )
    answer = json.loads(lines[-1])
    if not isinstance(answer, dict):
        raise EopfEnvironmentError(f"{python} -m {DISCOVERY_MODULE} answered {lines[-1][:200]!r}")
    return answer


async def eopf_processors(executable: Path, *, extra_env: dict[str, str] | None = None) -> dict[str, ProcessorInfo]:
    """Every processor, runnable or plan-only, with its task table (shipped files win over served tables)."""
    return processor_catalog(await ask_eopf_environment(executable, extra_env=extra_env))


class EopfProcessors:
    """The processors of a worker's EOPF environment, found once; until then (or if the environment does not
    answer) the shipped task tables alone."""

    def __init__(self, executable: Path) -> None:
        self._executable = executable
        self._catalog: dict[str, ProcessorInfo] | None = None
        self._lock = asyncio.Lock()
        self._started: asyncio.Task[dict[str, ProcessorInfo]] | None = None

    def start(self) -> None:
        """Ask the EOPF environment in the background (a worker's start must not wait for it)."""
        self._started = asyncio.create_task(self.catalog())

    async def stop(self) -> None:
        """Stop asking (a worker that stops before the answer)."""
        if self._started is not None and not self._started.done():
            self._started.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._started

    async def catalog(self) -> dict[str, ProcessorInfo]:
        async with self._lock:
            if self._catalog is None:
                try:
                    self._catalog = await eopf_processors(self._executable)
                except EopfEnvironmentError as err:
                    log.warning("the EOPF environment did not say which processors it has: %s", err)
                    self._catalog = processor_catalog({})
                runnable = sorted(name for name, info in self._catalog.items() if info.runnable)
                log.info("DPR processors: %s; runnable here: %s", sorted(self._catalog), runnable)
            return self._catalog
