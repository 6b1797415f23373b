"""docker-compose.yml as a whole: service dependencies, pinned images, the one-shot jobs, mounted scripts, the
Dockerfile it builds, and `docker compose config` accepting it with the example .env (no engine, no stack)."""

from __future__ import annotations

import re
from pathlib import Path

from rs_ondemand.stack.search_attributes import SEARCH_ATTRIBUTES
from tests.support.compose import (
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    ROOT,
    WORKER,
    compose,
    compose_config,
    endpoint,
    environment,
    resolved,
    services,
)

# --- dependencies ---


def test_depends_on_targets_exist_and_conditions_fit() -> None:
    for name, service in services().items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services(), f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target}, which has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services()[target].get("restart") == "no", f"{target} is a one-shot job: restart 'no'"
            else:
                assert condition == "service_started", f"{name} -> {target}: {condition}"


def test_dependencies_on_services_with_a_healthcheck_wait_until_healthy() -> None:
    """`service_started` would let a dependent start against a server that is not listening yet."""
    for name, service in services().items():
        for target, spec in service.get("depends_on", {}).items():
            if "healthcheck" in services()[target]:
                assert spec.get("condition") == "service_healthy", f"{name} -> {target}: use service_healthy"


def test_dependencies_have_no_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for target in services().get(name, {}).get("depends_on", {}):
                visit(target, (*path, name))
            done.add(name)

    for name in services():
        visit(name, ())


# --- consistency of the rest of the stack ---


def test_compose_file_uses_the_compose_specification() -> None:
    assert "version" not in compose()
    assert compose().get("volumes"), "state lives in named volumes"


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        if image.startswith("${"):  # our own image, tag chosen at build time
            assert "build" in service, name
            continue
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", f"{name}: pin {image} to a release tag"


def test_namespace_job_registers_the_search_attributes_of_the_code() -> None:
    job = environment("temporal-create-namespace")
    registered = dict(entry.split("=", 1) for entry in job["RS_SEARCH_ATTRIBUTES"].split())
    assert registered == SEARCH_ATTRIBUTES
    assert job["TEMPORAL_NAMESPACE"] == environment(WORKER)["TEMPORAL_NAMESPACE"]


def test_object_store_creates_the_workers_buckets_and_account() -> None:
    store, init, worker = environment("seaweedfs"), environment("seaweedfs-init"), environment(WORKER)
    for job in (store, init):
        assert job["RS_BUCKET"] == worker["RS_BUCKET"]
        assert job["RS_WORK_BUCKET"] == worker["RS_WORK_BUCKET"]
    assert store["RS_S3_ACCESS_KEY_ID"] == worker["AWS_ACCESS_KEY_ID"]
    assert store["RS_S3_SECRET_ACCESS_KEY"] == worker["AWS_SECRET_ACCESS_KEY"]
    assert endpoint(resolved(worker["S3_ENDPOINT_URL"])) == ("seaweedfs", 8333)


def test_mounted_scripts_exist() -> None:
    for name, service in services().items():
        mounts: dict[str, Path] = {}
        for volume in service.get("volumes", []):
            host, _, rest = str(volume).partition(":")
            if host.startswith("./"):
                mounts[rest.split(":")[0]] = ROOT / host
        for arg in [*service.get("entrypoint", []), *service.get("command", [])]:
            for target, directory in mounts.items():
                if str(arg).startswith(target + "/"):
                    path = directory / str(arg)[len(target) + 1 :]
                    assert path.is_file(), f"{name} runs {arg}, but {path} does not exist"
        for directory in mounts.values():
            assert directory.exists(), f"{name} mounts {directory}, which does not exist"


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.13-slim|^ARG PYTHON_IMAGE=python:3\.13-slim$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["/app/.venv/bin/rs-ondemand"]' in text
    assert 'CMD ["worker"]' in text
    assert "uv sync --frozen --no-dev --extra stack" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_copies_nothing_the_dockerignore_drops() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    assert {".env", ".venv", ".git", ".stack"} <= ignored
    for sources in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", DOCKERFILE.read_text(), re.MULTILINE):
        for source in sources.split():
            assert source not in ignored, f"Dockerfile copies {source}, which .dockerignore excludes"
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_compose_config_validates_with_the_example_env() -> None:
    compose_config(ENV_EXAMPLE, "-q")
