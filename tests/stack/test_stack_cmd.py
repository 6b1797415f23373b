"""`rs-ondemand stack status`: one JSON object, secrets masked, exit code from health, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from rs_ondemand.stack import StackInfo
from rs_ondemand.stack.envfile import MASK, is_secret
from tests.support.stack import stack_cli


def test_status_json_reports_healthy_services_without_secrets(stack: StackInfo) -> None:
    """`status --json` prints exactly one JSON object, exits 0 and never shows a secret value."""
    done = stack_cli("status", "--dir", str(stack.state_dir), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"services", "env"}
    for name, service in report["services"].items():
        assert service == {"url": stack.services[name].url, "healthy": True, "pid": stack.services[name].pid}
    assert report["env"].keys() == stack.env.keys()
    for key, value in stack.env.items():
        if is_secret(key):
            assert report["env"][key] == MASK
            assert value not in done.stdout
        else:
            assert report["env"][key] == value


def test_status_without_a_stack_fails_with_one_line(tmp_path: Path) -> None:
    """No stack in the dir: exit code 1, one clear line on stderr, nothing on stdout, no traceback."""
    done = stack_cli("status", "--dir", str(tmp_path / "none"), "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: no stack in ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()
