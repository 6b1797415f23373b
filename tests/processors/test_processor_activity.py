"""The processor activity's guards, without running EOPF: inputs, cluster labels, secrets, the environment."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.testing import ActivityEnvironment

from rs_ondemand.activities.eopf_monitor import RunMonitor
from rs_ondemand.activities.eopf_process import (
    DRIVER_FILE,
    OWNER_FILE,
    RUN_MARKER,
    group_members,
    kill_earlier_attempts,
    new_run_folder,
    parent_death_wrapper,
    record_driver,
    remove_abandoned_run_folders,
)
from rs_ondemand.activities.processor import EopfNotInstalledError, ProcessorActivities
from rs_ondemand.config import ProcessorSettings, S3Settings
from rs_ondemand.errors import InvalidInputError
from rs_ondemand.models.dpr import DprProcessIn
from rs_ondemand.models.processor_run import RunProcessorInput
from rs_ondemand.starter.samples import SAMPLE_SESSION, demo_dpr_request
from tests.support.eopf_runs import running

S3 = S3Settings(
    s3_endpoint_url="http://127.0.0.1:9000",
    aws_access_key_id=SecretStr("AKIA-TEST-KEY"),
    aws_secret_access_key=SecretStr("s3cr3t-value"),
)


def activities(**settings: Any) -> ProcessorActivities:
    # The S3 client is never reached by these tests: only the settings are read.
    store: Any = SimpleNamespace(settings=S3, client=None)
    return ProcessorActivities(store, ProcessorSettings(**settings))


def test_run_input_needs_exactly_one_payload_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of 's3_payload_file' and 'payload_yaml'"):
        RunProcessorInput(run_id="r", dask_cluster_label="local")
    with pytest.raises(ValidationError, match="exactly one"):
        RunProcessorInput(run_id="r", dask_cluster_label="local", s3_payload_file="s3://b/p.yaml", payload_yaml="a: 1")


async def test_unknown_cluster_label_is_refused(tmp_path: Path) -> None:
    eopf = tmp_path / "eopf"
    eopf.write_text("#!/bin/sh\n")
    eopf.chmod(0o755)
    with pytest.raises(InvalidInputError, match="unknown Dask cluster label 'dask-l9'; known: local"):
        await ActivityEnvironment().run(
            activities(executable=eopf).run_processor,
            RunProcessorInput(run_id="r", dask_cluster_label="dask-l9", payload_yaml="workflow: []"),
        )


async def test_missing_eopf_environment_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(EopfNotInstalledError, match="run scripts/setup-eopf"):
        await ActivityEnvironment().run(
            activities(executable=tmp_path / "nothing").run_processor,
            RunProcessorInput(run_id="r", dask_cluster_label="local", payload_yaml="workflow: []"),
        )


async def test_payload_with_a_credential_value_is_refused(tmp_path: Path) -> None:
    eopf = tmp_path / "eopf"
    eopf.write_text("#!/bin/sh\nexit 3\n")
    eopf.chmod(0o755)
    leaky = "io:\n  input_products:\n  - {id: A, reader_params: {storage_options: {secret: s3cr3t-value}}}\n"
    with pytest.raises(InvalidInputError, match=r"holds a credential value: name it as \$\{VARIABLE\}"):
        await ActivityEnvironment().run(
            activities(executable=eopf).run_processor,
            RunProcessorInput(run_id="r", dask_cluster_label="local", payload_yaml=leaky),
        )


def test_eopf_gets_the_named_values_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADIP_CLIENT_SECRET", "station-secret")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "rs-ondemand")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    env = activities()._environment()
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA-TEST-KEY"
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-value"
    assert env["S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["JUPYTERHUB_API_TOKEN"] == "hub-token"  # read by the settings under RS's own name
    assert env["OTEL_SERVICE_NAME"] == "rs-ondemand"
    assert "CADIP_CLIENT_SECRET" not in env
    assert env["PATH"]


def test_failure_text_never_shows_credentials() -> None:
    assert activities()._scrub("key=AKIA-TEST-KEY secret=s3cr3t-value") == "key=*** secret=***"


def test_a_new_attempt_kills_what_an_earlier_attempt_of_its_run_left(tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves its EOPF process group running: the next attempt of the same run stops
    it (found by the run marker in its environment, which Dask's processes inherit), and only it."""

    def spawn(run_id: str) -> subprocess.Popen[bytes]:
        env = {"PATH": "/usr/bin:/bin", RUN_MARKER: run_id}
        # A driver with a child of its own, as EOPF with a LocalCluster's worker.
        return subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60; wait"], env=env, start_new_session=True)

    def marked(run_id: str) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                marker = f"{RUN_MARKER}={run_id}".encode()
                if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found

    ours, other = spawn("dpr-x-run-1"), spawn("dpr-x-run-10")
    try:
        for _ in range(100):  # bash, its background sleep and its foreground sleep
            if len(marked("dpr-x-run-1")) == 3:
                break
            time.sleep(0.05)
        assert ours.pid in kill_earlier_attempts("dpr-x-run-1")
        assert ours.wait(timeout=10) == -9
        for _ in range(100):
            if not marked("dpr-x-run-1"):
                break
            time.sleep(0.05)
        assert marked("dpr-x-run-1") == []  # the child too
        assert other.poll() is None and len(marked("dpr-x-run-10")) >= 1  # another run (a longer id) is left alone
    finally:
        for process in (ours, other):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)


def test_a_new_attempt_kills_the_forked_run_its_run_folder_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run forked by the warm runner has the runner's environment in /proc (no run marker): the run folder
    records its process, and the next attempt of that run (and only of that run) kills it, with its group."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def forked(run_id: str) -> subprocess.Popen[bytes]:
        # No marker in its environment; a child of its own in its group, as a LocalCluster's nanny.
        run = subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60; wait"], start_new_session=True)
        record_driver(new_run_folder(run_id), run_id, run.pid)
        return run

    ours, longer_id = forked("dpr/x-run-1"), forked("dpr/x-run-10")
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = new_run_folder("dpr/x-run-1")
    (stale / DRIVER_FILE).write_text(f"{gone.pid} 1 dpr/x-run-1")  # an ended process: nothing to kill
    try:
        for _ in range(100):
            if len(group_members(ours.pid)) == 3:
                break
            time.sleep(0.05)
        assert kill_earlier_attempts("dpr/x-run-1") == [ours.pid]
        assert ours.wait(timeout=10) == -9
        for _ in range(100):
            if not group_members(ours.pid):
                break
            time.sleep(0.05)
        assert group_members(ours.pid) == []
        assert longer_id.poll() is None
    finally:
        for process in (ours, longer_id):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)


def test_an_eopf_run_dies_with_its_worker() -> None:
    """The EOPF command runs under a parent-death signal: a worker killed with SIGKILL takes its run along."""

    # A stand-in worker: starts the wrapped command (as run_processor does) and prints its pid.
    worker_code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen({[*parent_death_wrapper(), 'sleep', '60']!r}, start_new_session=True); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    worker = subprocess.Popen([sys.executable, "-c", worker_code], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    run = int(worker.stdout.readline())
    try:
        # setpriv sets the parent-death signal, then becomes the command: wait for that before killing the worker.
        for _ in range(200):
            if Path(f"/proc/{run}/cmdline").read_bytes().startswith(b"sleep"):
                break
            time.sleep(0.05)
        assert running(run)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        for _ in range(100):
            if not running(run):
                break
            time.sleep(0.05)
        assert not running(run), "the run outlived its worker"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(run, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        worker.stdout.close()


def test_run_folders_of_dead_workers_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ours = new_run_folder("dpr/x-run-1")  # made by this (live) process
    dead = new_run_folder("dpr/x-run-2")
    gone = subprocess.Popen(["true"])
    gone.wait()
    (dead / OWNER_FILE).write_text(f"{gone.pid} 1")  # a process that has ended
    reused = new_run_folder("dpr/x-run-3")
    (reused / OWNER_FILE).write_text(f"{os.getpid()} 1")  # our pid, but another start time: a reused pid
    being_made = tmp_path / "rs-eopf-dpr_x-run-4-abc"
    being_made.mkdir()
    stale = tmp_path / "rs-eopf-dpr_x-run-5-abc"
    stale.mkdir()
    os.utime(stale, (0, 0))
    other = tmp_path / "not-a-run"
    other.mkdir()

    assert ours.name.startswith("rs-eopf-dpr_x-run-1-")
    assert sorted(remove_abandoned_run_folders(grace_s=300)) == sorted([dead, reused, stale])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, being_made.name, other.name])


@pytest.mark.parametrize(
    ("lines", "events", "refusal"),
    [
        (["... :: Error running p.yaml: Module l0.s1 not found", "Error: Module l0.s1 not found"], [], True),
        (["Error: Workflow has cyclic dependencies, only acyclic allowed"], ["workflow_setup"], True),
        # Data that may come back, and a unit that failed once running: an operator's retry may pass.
        (["Error: CADU input is requested for ['U.1.CADU'] but its path is not available"], [], False),
        (["Error: Module x not found"], ["workflow_setup", "before_unit"], False),
        (["botocore.exceptions.ClientError: An error occurred (404): Not Found"], [], False),
    ],
)
def test_a_payload_eopf_refuses_is_told_from_a_failure_worth_retrying(
    tmp_path: Path, lines: list[str], events: list[str], refusal: bool
) -> None:
    monitor = RunMonitor(tmp_path, tail_lines=10)
    monitor.tail.extend(lines)
    (tmp_path / "progress.jsonl").write_text("".join(json.dumps({"event": e}) + "\n" for e in events))
    monitor.poll()
    assert (monitor.refusal() == lines[-1]) if refusal else monitor.refusal() is None


async def test_a_label_the_worker_does_not_know_runs_on_its_default_label() -> None:
    """RS sends the labels of its own clusters: with RS_EOPF_DEFAULT_DASK_CLUSTER they run on it, with a warning."""
    request = DprProcessIn.model_validate(
        demo_dpr_request("ops", SAMPLE_SESSION, "s1-cadip") | {"dask_cluster_label": "dask-l0"}
    )
    with pytest.raises(InvalidInputError, match=r"unknown Dask cluster label 'dask-l0'; known: local \(and no default"):
        await ActivityEnvironment().run(activities().plan_processing, request)
    plan = await ActivityEnvironment().run(activities(default_dask_cluster="local").plan_processing, request)
    assert plan.warnings == ["Dask cluster label 'dask-l0' is not one of this worker's: runs on 'local'"]


def test_the_default_label_must_be_one_of_the_workers() -> None:
    with pytest.raises(ValidationError, match="RS_EOPF_DEFAULT_DASK_CLUSTER 'dask-l9' is not a label of local"):
        ProcessorSettings(default_dask_cluster="dask-l9")
