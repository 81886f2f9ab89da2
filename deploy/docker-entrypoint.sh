#!/bin/sh
# The image's roles (docker run IMAGE <role>); anything else runs as given (docker run IMAGE montage ...).
set -eu
APP=/opt/dagster/app
case "${1:-code-server}" in
  webserver) shift; exec dagster-webserver -h 0.0.0.0 -p 3000 -w "$APP/workspace.yaml" "$@" ;;
  daemon) shift; exec dagster-daemon run -w "$APP/workspace.yaml" "$@" ;;
  code-server) shift; exec dagster code-server start -h 0.0.0.0 -p 4000 -m montage_pipeline.definitions \
    --location-name montage_pipeline "$@" ;;
  celery-worker) shift; exec dagster-celery worker start -A dagster_celery.app -y "$APP/celery_worker.yaml" \
    -q "${MONTAGE_CELERY_QUEUE:-dagster}" "$@" ;;
  migrate) shift; exec montage db upgrade "$@" ;;
  *) exec "$@" ;;
esac
