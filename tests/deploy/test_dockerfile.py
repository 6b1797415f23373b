"""Static checks of the image's EOPF environment: built from the locked eopf/env, where RS_EOPF_EXECUTABLE
points, with our packages' files really in the build context; run as a non-root user. No engine needed."""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
EOPF_ENV = ROOT / "eopf" / "env"


@dataclass
class Stage:
    name: str
    base: str
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    # (sources, destination resolved against WORKDIR, --from stage or None)
    copies: list[tuple[list[str], str, str | None]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


@functools.cache
def stages() -> list[Stage]:
    """The Dockerfile's stages, each with what it inherits from the stage it is built `FROM`."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    result: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not result:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(result))
            parent = next((stage for stage in result if stage.name == base), None)
            stage = Stage(name=name, base=base)
            if parent is not None:
                stage.workdir, stage.env = parent.workdir, dict(parent.env)
            result.append(stage)
        elif keyword == "WORKDIR":
            result[-1].workdir = posixpath.join(result[-1].workdir, rest)
        elif keyword == "ENV":
            result[-1].env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif keyword == "COPY":
            words = shlex.split(rest)
            source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            words = [w for w in words if not w.startswith("--")]
            destination = posixpath.join(result[-1].workdir, words[-1])
            result[-1].copies.append((words[:-1], destination, source_stage))
        elif keyword == "RUN":
            result[-1].runs.append(re.sub(r"--mount=\S+\s*", "", rest))
        elif keyword == "USER":
            result[-1].users.append(rest)
    return result


def stage(name: str) -> Stage:
    return next(s for s in stages() if s.name == name)


def runtime() -> Stage:
    return stages()[-1]


def eopf_venv() -> str:
    """The EOPF venv of the running image, from RS_EOPF_EXECUTABLE (`<venv>/bin/eopf`)."""
    executable = runtime().env["RS_EOPF_EXECUTABLE"]
    assert posixpath.basename(executable) == "eopf" and posixpath.basename(posixpath.dirname(executable)) == "bin"
    return posixpath.dirname(posixpath.dirname(executable))


def eopf_build_stage() -> Stage:
    """The stage whose venv the runtime copies to the EOPF venv's path."""
    venv = eopf_venv()
    for sources, destination, source_stage in runtime().copies:
        if source_stage and destination.rstrip("/") == venv and sources == [venv]:
            return stage(source_stage)
    raise AssertionError(f"the runtime stage copies no stage's {venv}")


def copied_into(build: Stage) -> dict[str, str]:
    """Files of the build context a stage copies: path in the image -> path in the repository."""
    files: dict[str, str] = {}
    for sources, destination, source_stage in build.copies:
        if source_stage:
            continue
        into_directory = len(sources) > 1 or destination.endswith("/")
        for source in sources:
            local = ROOT / source
            if local.is_dir():  # Docker copies a directory's contents, not the directory itself
                for path in local.rglob("*"):
                    in_image = posixpath.join(destination, path.relative_to(local).as_posix())
                    files[posixpath.normpath(in_image)] = path.relative_to(ROOT).as_posix()
            else:
                in_image = posixpath.join(destination, local.name) if into_directory else destination
                files[posixpath.normpath(in_image)] = source
    return files


def test_eopf_executable_points_into_the_venv_the_eopf_stage_builds() -> None:
    build = eopf_build_stage()
    assert build.env.get("UV_PROJECT_ENVIRONMENT") == eopf_venv()
    # The orchestrator's venv is a different one, and the only one on PATH.
    assert runtime().env["PATH"].startswith("/app/.venv/bin:")
    assert eopf_venv() != "/app/.venv"


def test_eopf_venv_is_installed_from_the_lock_without_dev_tools() -> None:
    build = eopf_build_stage()
    project = posixpath.relpath(str(EOPF_ENV.relative_to(ROOT)))
    syncs = [run for run in build.runs if run.startswith("uv sync")]
    assert syncs, "the EOPF stage runs no `uv sync`"
    for run in syncs:
        words = run.split()
        assert words[words.index("--project") + 1] == project, run
        assert "--frozen" in words, f"{run}: install exactly uv.lock"
        assert "--no-dev" in words, f"{run}: the dev group (a local dask-gateway-server) stays out of the image"
    # The last sync installs our packages as wheels: the runtime stage has no source tree for editable installs.
    assert "--no-editable" in syncs[-1].split() and "--no-install-local" not in syncs[-1].split()
    files = copied_into(build)
    for name in ("pyproject.toml", "uv.lock"):
        assert posixpath.join(build.workdir, project, name) in files, f"the EOPF stage does not copy {project}/{name}"


def test_local_packages_of_the_eopf_env_are_copied_whole() -> None:
    """Every path source of eopf/env, and the target of every symlink in it, is in the build."""
    build = eopf_build_stage()
    files = copied_into(build)
    sources = tomllib.loads((EOPF_ENV / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    paths = [(EOPF_ENV / spec["path"]).resolve() for spec in sources.values() if "path" in spec]
    assert paths, "eopf/env has no local packages"
    for package in paths:
        for path in package.rglob("*"):
            if "__pycache__" in path.parts or path.suffix == ".pyc" or not (path.is_file() or path.is_symlink()):
                continue
            relative = path.relative_to(ROOT).as_posix()
            in_image = posixpath.join(build.workdir, relative)
            assert in_image in files, f"{relative} is not copied into the EOPF stage"
            if path.is_symlink():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(in_image), str(path.readlink())))
                assert target in files, f"{relative} links to {target}, which the EOPF stage does not copy"


def test_eopf_stage_checks_its_venv() -> None:
    checks = " ".join(eopf_build_stage().runs)
    for module in ("eopf", "distributed", "rs_demo_processor.units", "rs_eopf_hooks.progress"):
        assert re.search(rf"\b{re.escape(module)}\b", checks), f"the build does not import {module}"
    assert f"test -x {eopf_venv()}/bin/dask" in checks


def test_all_stages_share_the_python_eopf_requires() -> None:
    """A venv's python is a symlink to its base image's interpreter: same image everywhere, a 3.13 one."""
    requires = tomllib.loads((EOPF_ENV / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.13" in requires
    bases = {s.base for s in stages() if s.base not in {t.name for t in stages()}}
    assert bases == {"python:3.13-slim"}, bases


def test_image_runs_as_a_non_root_user() -> None:
    users = runtime().users
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
