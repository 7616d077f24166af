# syntax=docker/dockerfile:1.7
# The central server image: API (`receipts server`), ingest workers (`receipts ingest`), and the
# operations commands (`receipts backup`, `receipts grafana sync`). Multi-stage: the build stage
# compiles wheels; the runtime stage has no compiler, runs as an unprivileged user and reports
# its health from /health. Build from the repository root:
#   docker build -f infra/docker/server.Dockerfile -t receipts-server .
# (Docker cannot run on the machines this repository is developed on; tests/infra checks this
# file by parsing it.)

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY server ./server
COPY provisioning ./provisioning
COPY edge_agent ./edge_agent
COPY firmware ./firmware
COPY infra ./infra
RUN pip wheel --wheel-dir /wheels ".[server,ops]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# libpq for psycopg2, postgresql-client for `receipts backup` (pg_dump/pg_restore), tesseract as
# the OCR baseline for phone uploads, tini to forward signals (ingest stops on SIGTERM).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 postgresql-client tesseract-ocr tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 receipts \
 && useradd --system --uid 10001 --gid receipts --home-dir /var/lib/receipts --create-home receipts
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "receipt-manager[server,ops]" \
 && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
    RM_ENVIRONMENT=production \
    RM_IMAGE_STORE__ROOT=/var/lib/receipts/images
WORKDIR /var/lib/receipts
USER receipts:receipts
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--", "receipts"]
CMD ["server", "--host", "0.0.0.0", "--port", "8000"]
