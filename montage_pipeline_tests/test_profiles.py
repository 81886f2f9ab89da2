from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from montage_pipeline.defs.code_location import build_definitions
from montage_pipeline.profiles import ProfileError, load_profile

PRODUCTION = {
    "MONTAGE_PROFILE": "production",
    "MONTAGE_DATABASE_URL": "postgresql+psycopg2://pipeline:s3cret@db.internal:5432/platform",
    "MONTAGE_STORAGE_ROOT": "/srv/uploads",
    "MONTAGE_S3_BUCKET": "montages",
}


def test_embedded_is_the_default_and_needs_no_server(tmp_path: Path) -> None:
    profile = load_profile({"MONTAGE_HOME": str(tmp_path)})
    assert profile.name == "embedded"
    assert profile.database_url == f"sqlite:///{tmp_path / 'platform.sqlite'}"
    assert profile.tables_database_url == profile.database_url
    assert profile.storage_root == tmp_path / "storage"
    assert profile.media_root == tmp_path / "media"
    assert profile.s3 is None


def test_production_reads_everything_from_the_environment() -> None:
    profile = load_profile({**PRODUCTION, "MONTAGE_S3_ENDPOINT_URL": "http://minio:9000"})
    assert profile.name == "production"
    assert profile.database_url == "MONTAGE_DATABASE_URL"  # the variable's name, not the secret
    assert profile.database_url_value() == PRODUCTION["MONTAGE_DATABASE_URL"]
    assert "s3cret" not in repr(profile)
    assert profile.s3 is not None and profile.s3.bucket == "montages"
    assert profile.s3.endpoint_url == "http://minio:9000"


@pytest.mark.parametrize("missing", ["MONTAGE_DATABASE_URL", "MONTAGE_STORAGE_ROOT", "MONTAGE_S3_BUCKET"])
def test_half_configured_production_names_the_missing_variable(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ProfileError, match=missing):
        load_profile(env)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ProfileError, match="'staging' is not a profile"):
        load_profile({"MONTAGE_PROFILE": "staging"})


@pytest.mark.parametrize("env", [{}, PRODUCTION], ids=["embedded", "production"])
def test_definitions_load_in_both_profiles(env: dict[str, str], tmp_path: Path) -> None:
    defs = build_definitions({"MONTAGE_HOME": str(tmp_path), **env})
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"eligible_jobs", "selected_clips"} <= keys
    assert defs.resolve_job_def("weekly_montage_job") is not None


def test_production_secrets_stay_out_of_resource_config() -> None:
    defs = build_definitions(PRODUCTION)
    resources = defs.resources or {}
    rendered = repr(resources["platform_db"]) + repr(resources["table_io_manager"])
    assert "s3cret" not in rendered
    assert "MONTAGE_DATABASE_URL" in rendered  # an EnvVar, resolved only inside runs


def test_a_private_relays_ca_reaches_the_mailer() -> None:
    from montage_pipeline.defs.resources.wiring import build_notify_resources
    from montage_pipeline.settings import load_settings

    env = {"MONTAGE_SMTP_HOST": "smtp.internal", "MONTAGE_SMTP_CA_FILE": "/etc/ssl/relay-ca.pem"}
    assert build_notify_resources(load_settings(env))["mailer"].ca_file == "/etc/ssl/relay-ca.pem"
    smtp_only = load_settings({"MONTAGE_SMTP_HOST": "smtp.example.com"})
    assert build_notify_resources(smtp_only)["mailer"].ca_file == ""
