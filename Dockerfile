# One image for every Epochal process: the API, the workers and the one-shot migration.
#
#   docker build -t epochal .
#   docker build --build-arg TORCH_INDEX_URL=<a PyTorch wheel index> -t epochal .
#
# TORCH_INDEX_URL picks the torch wheel (CPU-only or a given CUDA build) without hard-coding a
# host here; empty means plain PyPI. The version stays pinned by pyproject.toml (torch==2.13.0,
# which local builds such as 2.13.0+cpu satisfy).
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EPOCHAL_ARTIFACTS_DIR=/data/artifacts \
    EPOCHAL_API_HOST=0.0.0.0

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this (large, torch) layer is rebuilt only when
# pyproject.toml or TORCH_INDEX_URL changes, not on every source edit.
# epochal-client is left out here: it is installed from ./client below, never from an index.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if not d.startswith('epochal-client')))" > /tmp/requirements.txt \
    && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (everything it needs is installed above, so this layer is quick):
# every package of [tool.setuptools.packages.find] in pyproject.toml, each into a folder of its
# own (`COPY a b ./` would merge their contents), and the light client (client/, a distribution
# of its own that the server depends on), installed in the same pip call. tests/test_dockerfile.py
# imports every module from exactly what these lines copy, so a package missing here fails the
# tests.
COPY api ./api
COPY worker ./worker
COPY core ./core
COPY cli ./cli
COPY client ./client
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} ./client . \
    && rm -rf build *.egg-info client/build client/src/*.egg-info

# Non-root. /data/artifacts is created (and owned) here so that a named volume mounted on it
# starts out writable; /app/var is where `epochal serve` keeps its embedded SQLite and broker.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin epochal \
    && mkdir -p /data/artifacts /app/var \
    && chown -R epochal:epochal /data /app/var
USER epochal

EXPOSE 8000

# No HEALTHCHECK here: the same image runs workers and the migration, which serve no HTTP.
# docker-compose.yml gives the API its /readyz check.
CMD ["epochal", "api", "--host", "0.0.0.0", "--port", "8000"]
