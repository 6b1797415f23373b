"""The command line as a whole: help that shows what it says, one exit-code convention, no import loop."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rs_ondemand.starter.cli import app, run

STARTER = Path(__file__).resolve().parents[2] / "rs_ondemand" / "starter"


def command_paths() -> list[list[str]]:
    """Every command of `rs-ondemand`, as the words that name it."""
    paths: list[list[str]] = []

    def walk(command: Any, words: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (of typer's own click)
            for name, sub in command.commands.items():
                walk(sub, [*words, name])
        else:
            paths.append(words)

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("words", command_paths(), ids=" ".join)
def test_help_shows_texts_as_written_and_flags_without_a_metavar(words: list[str]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())


@pytest.mark.parametrize("station", ["prip", "auxip"])
def test_the_window_is_in_the_stage_help(station: str) -> None:
    """Rich markup took `[start, end]` for a tag and printed "covers ."."""
    result = CliRunner().invoke(app, ["stage", station, "--help"], terminal_width=80)
    assert "whose validity covers [start, end]." in " ".join(result.output.split())


def no_stack(tmp_path: Path) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": "127.0.0.1:1", "RS_STACK_DIR": str(tmp_path / "no-stack")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stage", "prip", "--start", "0001-01-01", "--end", "2025-01-01", "--product-type", "X"], "out of range"),
        (["stage", "auxip", "--start", "2025-01-02", "--end", "2025-01-01", "--product-type", "X"], "must be after"),
        (["stage", "cadip", "--session", "S1A_1", "--catalog-collection", "x:y"], "not a safe identifier"),
        (["stage", "prip", "--end", "2025-01-01", "--product-type", "X"], "Missing option '--start'"),
        (["retry"], "give a WORKFLOW_ID or --query"),
        (["cancel", "some-id", "--query", "x"], "give a WORKFLOW_ID or --query, not both"),
        (["schedule", "backfill", "s", "--start", "12345", "--end", "2025-01-01"], "not an ISO 8601"),
        (
            [
                "schedule",
                "create",
                "--id",
                "a:b",
                "--station",
                "prip",
                "--product-type",
                "X",
                "--catalog-collection",
                "c",
            ],
            "not a safe identifier",
        ),
    ],
)
def test_usage_errors_exit_2_before_anything_starts(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in no_stack(tmp_path).items():
        monkeypatch.setenv(name, value)
    code = run(args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_command_modules_do_not_import_the_cli() -> None:
    """`cli` imports every command module: one importing `cli` back (for a shared helper) was an import loop."""
    for module in STARTER.glob("*.py"):
        if module.name == "cli.py":
            continue
        imported = {
            node.module
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        } | {
            alias.name
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "rs_ondemand.starter.cli" not in imported, module.name
