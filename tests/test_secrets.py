"""No secret leaks: after a full run (CADIP staging, then DPR with the real EOPF processor), the configured secret
values appear in no workflow history, no payload, no worker log record and no server log."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from temporalio.client import Client

from rs_ondemand.config import Settings
from rs_ondemand.models.dpr import DprProcessResult
from rs_ondemand.stack import StackInfo
from rs_ondemand.workflows.dpr_processing import DprProcessing
from tests.support.sample_requests import demo_request, stage_sample_session

SESSION = "S1A_20241114143038056552"


def configured_secrets(settings: Settings) -> dict[str, str]:
    values = {
        "S3 secret key": settings.s3.aws_secret_access_key,
        "S3 access key": settings.s3.aws_access_key_id,
    }
    for station in settings.stations:
        values[f"{station.kind} password"] = station.password
        values[f"{station.kind} client secret"] = station.client_secret
    return {name: value.get_secret_value() for name, value in values.items() if value is not None}


async def histories(client: Client, workflow_id: str) -> list[str]:
    """The histories of a request and of all its descendants, as JSON."""
    found = [(await client.get_workflow_handle(workflow_id).fetch_history()).to_json()]
    async for child in client.list_workflows(f"ParentWorkflowId = '{workflow_id}'"):
        found += await histories(client, child.id)
    return found


async def test_no_secret_in_histories_payloads_or_logs(
    client: Client,
    task_queue: str,
    settings: Settings,
    stack: StackInfo,
    collection: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = configured_secrets(settings)
    assert {"S3 secret key", "cadip password", "auxip client secret"} <= set(secrets)
    # The worker's level (INFO), and everything of ours. (At DEBUG, botocore logs request headers, whose SigV4
    # `Credential=` names the access key id — an identifier AWS sends in every request, never the secret key.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="rs_ondemand")
    staging_id = await stage_sample_session(client, task_queue, "frank", collection)
    dpr_id = f"test-secrets-{uuid.uuid4()}"
    result: DprProcessResult = await client.execute_workflow(
        DprProcessing.run, demo_request("frank", collection), id=dpr_id, task_queue=task_queue
    )
    assert result.published, "the run must have gone through staging, processing and publication"

    texts: dict[str, str] = {"payload YAML": result.payload_yaml, "worker log records": caplog.text}
    for workflow_id in (staging_id, dpr_id):
        for index, history in enumerate(await histories(client, workflow_id)):
            texts[f"history {workflow_id} #{index}"] = history
    # The servers' logs (the simulator, a test means playing the stations, knows their credentials itself).
    for name in ("temporal", "s3", "catalog", "postgres"):
        log = stack.state_dir / "logs" / f"{name}.log"
        if log.exists():
            texts[f"{name} server log"] = log.read_text(errors="replace")
    assert len([name for name in texts if name.startswith("history")]) >= 4  # parents, unit, staging children
    # The payload names the credentials; EOPF reads them from its own environment.
    assert "${AWS_SECRET_ACCESS_KEY}" in result.payload_yaml

    leaks = [
        f"{secret_name} in {where}"
        for where, text in texts.items()
        for secret_name, secret in secrets.items()
        if secret in text
    ]
    assert not leaks, leaks
    tokens: list[Any] = [where for where, text in texts.items() if "Bearer " in text or '"access_token"' in text]
    assert not tokens, f"OAuth2 tokens in {tokens}"
