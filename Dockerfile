# syntax=docker/dockerfile:1
# One image for the worker (default), the starter CLI (`docker compose run --rm worker stage cadip ...`),
# the station simulator (`python -m rs_simulator`) and the pgstac schema migration (`pypgstac migrate`).

# Both stages must use the same interpreter: the venv's python is a symlink to the base image's.
ARG PYTHON_IMAGE=python:3.13-slim

FROM ${PYTHON_IMAGE} AS build
# uv from PyPI (the only registry the build hosts are guaranteed to reach); same version as the dev setup.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first: this layer is reused as long as pyproject.toml and uv.lock do not change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra stack --no-install-project
COPY README.md worker.py ./
COPY rs_ondemand ./rs_ondemand
COPY rs_simulator ./rs_simulator
# --no-editable: the project goes into the venv as a wheel, so the runtime stage needs no source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra stack --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 rs \
    && useradd --system --uid 10001 --gid rs --home-dir /app --no-create-home --shell /usr/sbin/nologin rs
COPY --from=build /app/.venv /app/.venv
COPY worker.py /app/worker.py
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER rs:rs
ENTRYPOINT ["/app/.venv/bin/rs-ondemand"]
CMD ["worker"]
