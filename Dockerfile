# syntax=docker/dockerfile:1
# montage_pipeline's image: one image, five roles (deploy/docker-entrypoint.sh): webserver, daemon,
# code-server, celery-worker, migrate. No ffmpeg binary: PyAV's wheels carry FFmpeg's libraries.
# Build: docker build -t montage_pipeline:0.1.0 .   (see docs/deploy.md)
# python:3.11-slim on Debian 12 (bookworm), named: the apt package names below are bookworm's.

# --- build: the wheel (as test_packaging.py builds it), then every dependency at its pin -------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md constraints.txt ./
COPY montage_pipeline ./montage_pipeline
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip wheel --no-deps -w /wheels . \
    && /opt/venv/bin/pip install -c constraints.txt "$(ls /wheels/montage_pipeline-*.whl)[k8s]"

# --- runtime: the venv, the instance config, a non-root user -------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
# opencv-python (PySceneDetect's detectors) loads libGL and GLib at import; nothing else is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin montage \
    && mkdir -p /opt/dagster/dagster_home /opt/dagster/app /var/lib/montage/uploads \
    && chown -R montage:montage /opt/dagster /var/lib/montage
COPY --from=build /opt/venv /opt/venv
# The production instance (dagster-postgres storage from DAGSTER_PG_*), the compose workspace (the
# webserver and daemon reach the code location over gRPC) and the Celery workers' config.
COPY dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml deploy/celery_worker.yaml deploy/docker-entrypoint.sh /opt/dagster/app/
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MONTAGE_PROFILE=production \
    MONTAGE_HOME=/var/lib/montage \
    PYTHONUNBUFFERED=1
USER montage
WORKDIR /opt/dagster/app
EXPOSE 3000 4000
ENTRYPOINT ["/opt/dagster/app/docker-entrypoint.sh"]
CMD ["code-server"]
