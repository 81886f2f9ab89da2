"""The one Definitions object: assets, jobs, schedule and resources for the active profile."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from montage_pipeline.assets import analysis, audio, publish, render, selection
from montage_pipeline.automation import build_weekly_schedule, weekly_montage_job
from montage_pipeline.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.io_managers.table_io_manager import TableIOManager
from montage_pipeline.profiles import Profile, load_profile
from montage_pipeline.resources.media_store import LocalMediaStore, MediaStore, S3MediaStore
from montage_pipeline.resources.platform_db import PlatformDatabase
from montage_pipeline.resources.upload_storage import UploadStorage


def _url(profile: Profile, field: str) -> Any:
    """A database URL as an EnvVar in production (kept out of the UI), a literal in the embedded profile."""
    raw = getattr(profile, field)
    return dg.EnvVar(raw) if field in profile.secret_env else raw


def build_media_store(profile: Profile) -> MediaStore:
    if profile.s3 is not None:
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource(endpoint_url=profile.s3.endpoint_url, region_name=profile.s3.region_name)
        return S3MediaStore(s3=s3, bucket=profile.s3.bucket, prefix=profile.s3.prefix)
    assert profile.media_root is not None
    return LocalMediaStore(root=str(profile.media_root))


def build_resources(profile: Profile) -> dict[str, Any]:
    media_store = build_media_store(profile)
    return {
        "media_store": media_store,
        "media_io_manager": MediaIOManager(media_store=media_store),
        "platform_db": PlatformDatabase(url=_url(profile, "database_url")),
        "table_io_manager": TableIOManager(url=_url(profile, "tables_database_url")),
        "upload_storage": UploadStorage(root=str(profile.storage_root)),
    }


def build_definitions(env: Mapping[str, str] | None = None) -> dg.Definitions:
    profile = load_profile(os.environ if env is None else env)
    return dg.Definitions(
        assets=dg.load_assets_from_modules([selection, analysis, render, audio, publish]),
        jobs=[weekly_montage_job],
        schedules=[build_weekly_schedule()],
        resources=build_resources(profile),
    )


defs = build_definitions()
