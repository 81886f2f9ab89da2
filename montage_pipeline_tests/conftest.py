"""Fixtures shared by the suite: throwaway databases on the real PostgreSQL server and on SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from montage_pipeline.defs.resources.media_store import (
    LocalMediaStoreResource,
    MediaStoreResource,
    S3MediaStoreResource,
)
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.storage.media_store import MediaStore
from montage_pipeline_tests.databases import fresh_database
from montage_pipeline_tests.publish_support import build_week, export_week


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the real PostgreSQL server, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'platform.sqlite'}"


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated platform database, once on PostgreSQL and once on SQLite."""
    url: str = request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server over HTTP on 127.0.0.1 (moto in server mode)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store_resource(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStoreResource:
    """The media store's resource, once as a local folder and once as a bucket on the S3 server."""
    if request.param == "local":
        return LocalMediaStoreResource(root=str(tmp_path / "media"))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3MediaStoreResource(s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"), bucket=bucket)


@pytest.fixture
def store(store_resource: MediaStoreResource) -> MediaStore:
    """The plain media store the cores use, as the resource builds it (local folder, then S3)."""
    return store_resource.store()


@pytest.fixture(scope="session")
def built_week(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[object]:
    """One week built through `mixed_audio` and exported, shared by the publishing tests (~50 s once)."""
    for week in build_week(tmp_path_factory.mktemp("built_week"), s3_endpoint):
        assert export_week(week).success
        yield week


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "long: a minute or more of real media work; under xdist its module is handed out first"
    )


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(d and d[-1].scope == "module" for d in defs)


@pytest.hookimpl(tryfirst=True)  # before xdist's worker turns the groups into node-id suffixes
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (make test), the tests on the session's built week run on
    one worker, so the ~50 s week is built once, and so do a module's tests that share a module-scoped
    fixture (the cut week's ~60 s). Measured from fresh clones: 15 min 51 s this way, 17 min 3 s with
    the built week's tests spread (built once per worker). Under pytest 9.2 xdist loses every group:
    pyproject.toml keeps pytest below it."""
    # xdist hands out the groups largest first, then the single tests in collection order: the modules
    # marked `long` go first, so no minute-long test starts last while the other worker sits idle.
    # A stable sort on whole modules: each module's tests stay together (module-scoped fixtures).
    long_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("long")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in long_modules)
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if "built_week" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("built_week"))
        elif _uses_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(f"module:{item.nodeid.split('::')[0]}"))
