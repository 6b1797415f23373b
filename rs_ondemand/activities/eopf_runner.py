"""The worker's warm EOPF runner: one `python -m rs_eopf_hooks.runner` process of the EOPF environment, which has
EOPF imported and forks a process per run (see that module for what a forked run is and gets).

A cold `eopf trigger local` spends seconds of CPU importing EOPF's science stack before it does anything; a fork
of the runner starts at once. The runner starts with the worker's first run (or `start()`), under the same
parent-death signal as a cold EOPF process, and in a session of its own: it dies with the worker, and its runs
die with it (their own parent-death signal). If it dies (killed, out of memory), the runs it had in flight fail
with `EopfRunnerLostError`, which is retryable: the next attempt starts a new runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from rs_ondemand.activities.eopf_monitor import OUTPUT_NAME
from rs_ondemand.activities.eopf_process import PAYLOAD_NAME
from rs_ondemand.errors import OnDemandError

log = logging.getLogger(__name__)

RUNNER_MODULE = "rs_eopf_hooks.runner"
START_TIMEOUT_S = 300.0
"""Importing EOPF takes 4 to 5 s of CPU: on a busy machine, minutes."""
STOP_TIMEOUT_S = 10.0


class EopfRunnerLostError(OnDemandError):
    """The warm runner died while a run of it was going (and took the run along). Retryable: the next attempt
    starts a new runner."""


class ForkedRun:
    """A run forked by the runner: its pid (the leader of its process group) and how it ended."""

    def __init__(self, runner: WarmRunner, pid: int, ended: asyncio.Future[int]) -> None:
        self._runner = runner
        self.pid = pid
        self._ended = ended
        self.returncode: int | None = None

    async def wait(self) -> int:
        """Its exit code (negative: killed by that signal).

        Raises:
            EopfRunnerLostError: the runner died first (and the run with it).
        """
        self.returncode = await asyncio.shield(self._ended)
        return self.returncode


class WarmRunner:
    """The runner process of one worker, started on first use and again after it died."""

    def __init__(self, python: Path, env: dict[str, str], wrapper: list[str]) -> None:
        self._python = python
        self._env = env
        self._wrapper = wrapper
        """A command prefix: the parent-death signal."""
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._exits: dict[str, asyncio.Future[int]] = {}
        self._readers: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        """The runner's pid while it runs."""
        return self._proc.pid if self._alive() else None  # type: ignore[union-attr]

    def _alive(self) -> bool:
        return (
            self._proc is not None
            and self._proc.returncode is None
            and bool(self._readers)
            and not self._readers[0].done()
        )

    async def start(self) -> None:
        """Start the runner unless it runs; returns once it has imported EOPF."""
        async with self._lock:
            if self._alive():
                return
            await self._kill()
            proc = await asyncio.create_subprocess_exec(
                *self._wrapper,
                str(self._python),
                "-m",
                RUNNER_MODULE,
                env=self._env | {"PYTHONUNBUFFERED": "1"},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: a Ctrl-C meant for the worker does not kill the runs (the worker cancels them).
                start_new_session=True,
                limit=2**20,
            )
            assert proc.stdout is not None and proc.stderr is not None
            ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._proc, self._pending = proc, {"ready": ready}
            self._readers = [
                asyncio.create_task(self._read_replies(proc.stdout)),
                asyncio.create_task(self._log_stderr(proc.stderr)),
            ]
            try:
                hello = await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
            except BaseException:
                await self._kill()
                raise
            log.info(
                "warm EOPF runner ready (pid %d, EOPF imported in %.1f s, %d Python thread(s))",
                proc.pid,
                hello.get("seconds", 0),
                hello.get("threads", 0),
            )

    async def start_run(self, workdir: Path, env: dict[str, str]) -> ForkedRun:
        """Fork a run of `workdir/payload.yaml` with the environment `env`, its output to `workdir/output.log`
        (an `eopf_process.Starter`).

        Raises:
            EopfRunnerLostError: the runner died before it could fork.
        """
        await self.start()
        key = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        forked: asyncio.Future[dict[str, Any]] = loop.create_future()
        ended: asyncio.Future[int] = loop.create_future()
        self._pending[key], self._exits[key] = forked, ended
        if not self._alive():  # it died since it started: nothing would ever answer
            self._pending.pop(key), self._exits.pop(key)
            raise EopfRunnerLostError("the warm EOPF runner died")
        request = {
            "id": key,
            "payload": str(workdir / PAYLOAD_NAME),
            "workdir": str(workdir),
            "output": str(workdir / OUTPUT_NAME),
            "env": env,
        }
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            await proc.stdin.drain()
            answer = await forked
        except (ConnectionError, BrokenPipeError) as err:
            raise EopfRunnerLostError(f"the warm EOPF runner is gone: {err}") from err
        finally:
            self._pending.pop(key, None)
        if "error" in answer:
            self._exits.pop(key, None)
            raise EopfRunnerLostError(f"the warm EOPF runner could not start the run: {answer['error']}")
        return ForkedRun(self, int(answer["pid"]), ended)

    async def _read_replies(self, replies: asyncio.StreamReader) -> None:
        try:
            while line := await replies.readline():
                with contextlib.suppress(ValueError):
                    self._dispatch(json.loads(line))
        finally:
            lost = EopfRunnerLostError("the warm EOPF runner died")
            waiting: list[asyncio.Future[Any]] = [*self._pending.values(), *self._exits.values()]
            for future in waiting:
                if not future.done():
                    future.set_exception(lost)
                    future.exception()  # retrieved here: a run nobody waits for any more must not warn
            self._pending.clear()
            self._exits.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        key = "ready" if message.get("ready") else str(message.get("id"))
        if "exit" in message:
            ended = self._exits.pop(key, None)
            if ended is not None and not ended.done():
                ended.set_result(int(message["exit"]))
        elif (waiting := self._pending.get(key)) is not None and not waiting.done():
            waiting.set_result(message)
        elif message.get("error"):
            log.warning("the warm EOPF runner refused a request: %s", message["error"])

    async def _log_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.warning("EOPF runner: %s", line.decode(errors="replace").rstrip())

    async def aclose(self) -> None:
        """Stop the runner: it kills the runs still going, then exits (SIGKILL if it does not)."""
        async with self._lock:
            if self._proc is not None and self._proc.stdin is not None and self._proc.returncode is None:
                self._proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT_S)
            await self._kill()

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self._reap()

    async def _reap(self) -> None:
        if self._proc is not None:
            code = await self._proc.wait()
            if code not in (0, None):
                log.warning("the warm EOPF runner (pid %d) ended with exit code %d", self._proc.pid, code)
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._proc, self._readers = None, []
