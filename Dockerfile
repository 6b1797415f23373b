# One image for the worker (default), the starter CLI (`docker compose run --rm worker stage cadip ...`),
# the station simulator (`python -m rs_simulator`), the pgstac schema migration (`pypgstac migrate`) and the
# Dask scheduler and workers (`/app/.venv-eopf/bin/dask scheduler|worker`).
# Two virtual environments, as on a developer machine (scripts/setup, scripts/setup-eopf):
#   /app/.venv       the orchestrator (uv.lock)
#   /app/.venv-eopf  EOPF 3.0 with the demo processor and our EOPF hooks (eopf/env/uv.lock); the worker
#                    runs its `eopf` as a subprocess, and the Dask scheduler and workers run its `dask`, so the
#                    processor's code and the Dask version are the same on the driver and on the cluster.

# Every stage must use the same interpreter: a venv's python is a symlink to the base image's.
ARG PYTHON_IMAGE=python:3.13-slim

FROM ${PYTHON_IMAGE} AS uv
# uv from PyPI (the only registry the build hosts are guaranteed to reach); same version as the dev setup.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# No cache mounts (they need BuildKit): the classic builder of Compose v1 builds this file too. The layers of the
# locked dependencies are reused as long as the lock files do not change.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src

# --- the orchestrator's venv ---
FROM uv AS build
ENV UV_PROJECT_ENVIRONMENT=/app/.venv
# Dependencies first: this layer is reused as long as pyproject.toml and uv.lock do not change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra stack --no-install-project
COPY README.md worker.py ./
COPY rs_ondemand ./rs_ondemand
COPY rs_simulator ./rs_simulator
# --no-editable: the project goes into the venv as a wheel, so the runtime stage needs no source tree.
RUN uv sync --frozen --no-dev --extra stack --no-editable

# --- the EOPF venv, from the locked eopf/env project (what scripts/setup-eopf installs) ---
FROM uv AS eopf-build
ENV UV_PROJECT_ENVIRONMENT=/app/.venv-eopf
# Third-party dependencies first (eopf and its science stack, ~1.2 GB): rebuilt only when the lock changes.
COPY eopf/env/pyproject.toml eopf/env/uv.lock ./eopf/env/
COPY eopf/rs_demo_processor/pyproject.toml ./eopf/rs_demo_processor/
COPY eopf/rs_eopf_hooks/pyproject.toml ./eopf/rs_eopf_hooks/
RUN uv sync --project eopf/env --frozen --no-dev --no-install-local
# Then our two packages, as wheels (--no-editable: the runtime stage has no source tree). The demo processor's
# task table is a symlink into rs_ondemand/dpr/tasktables, which the wheel build follows.
COPY eopf/rs_demo_processor ./eopf/rs_demo_processor
COPY eopf/rs_eopf_hooks ./eopf/rs_eopf_hooks
COPY rs_ondemand/dpr/tasktables ./rs_ondemand/dpr/tasktables
RUN uv sync --project eopf/env --frozen --no-dev --no-editable
# Fail the build rather than the first DPR run: the trigger, our packages and the Dask command must all be there.
RUN /app/.venv-eopf/bin/python -c 'import eopf, distributed, dask_gateway, rs_demo_processor.units, rs_eopf_hooks.progress' \
    && test -x /app/.venv-eopf/bin/eopf \
    && test -x /app/.venv-eopf/bin/dask

FROM ${PYTHON_IMAGE} AS runtime
# A home of its own: Dask, EOPF and matplotlib keep small config and cache files there.
RUN groupadd --system --gid 10001 rs \
    && useradd --system --uid 10001 --gid rs --home-dir /home/rs --create-home --shell /usr/sbin/nologin rs
COPY --from=eopf-build /app/.venv-eopf /app/.venv-eopf
COPY --from=build /app/.venv /app/.venv
COPY worker.py /app/worker.py
# Only the orchestrator's venv is on PATH; the EOPF one is always called by its full path.
ENV PATH=/app/.venv/bin:$PATH \
    RS_EOPF_EXECUTABLE=/app/.venv-eopf/bin/eopf \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER rs:rs
ENTRYPOINT ["/app/.venv/bin/rs-ondemand"]
CMD ["worker"]
