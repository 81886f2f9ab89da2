"""Which deployment we are in, decided from the environment in one place.

`embedded` (the default) needs no server: one SQLite file holds the platform tables and the asset
tables, and local folders stand in for the upload storage and the media store. `production` reads its
database, storage root and S3 bucket from the environment and fails at load, naming the missing
variable, when half-configured. Secrets (the database URL carries a password) reach Dagster resources as
`EnvVar`s, so they never show up in the UI or the run config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROFILE_VAR = "MONTAGE_PROFILE"
PROFILES = ("embedded", "production")
PRODUCTION_REQUIRED = ("MONTAGE_DATABASE_URL", "MONTAGE_STORAGE_ROOT", "MONTAGE_S3_BUCKET")


class ProfileError(RuntimeError):
    """The environment does not describe a usable deployment; the message says what to set."""


@dataclass(frozen=True, slots=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region_name: str | None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    home: Path  # MONTAGE_HOME (embedded data, the media cache)
    # Names of environment variables (production) or literal URLs (embedded); see `secret_env`.
    database_url: str
    tables_database_url: str
    storage_root: Path
    media_root: Path | None  # local media store folder (embedded)
    s3: S3Settings | None  # S3 media store (production)
    secret_env: frozenset[str]  # which of the fields above are env var names, not values
    # The URLs themselves, read with the rest (for the CLI and the read API); never shown.
    database_url_resolved: str = field(default="", repr=False, compare=False)
    tables_database_url_resolved: str = field(default="", repr=False, compare=False)

    def database_url_value(self) -> str:
        return self.database_url_resolved or self.database_url

    def tables_database_url_value(self) -> str:
        return self.tables_database_url_resolved or self.tables_database_url


def default_home() -> Path:
    """`.montage/` in the project checkout (or the working directory for an installed package)."""
    here = Path(__file__).resolve().parents[1]
    base = here if (here / "pyproject.toml").exists() else Path.cwd()
    return base / ".montage"


def load_profile(env: Mapping[str, str]) -> Profile:
    """The deployment `env` describes; `settings.load_settings` calls it with the process's environment."""
    name = env.get(PROFILE_VAR, "embedded").strip() or "embedded"
    if name == "embedded":
        return _embedded(env)
    if name == "production":
        return _production(env)
    raise ProfileError(f"{PROFILE_VAR}={name!r} is not a profile; use one of: {', '.join(PROFILES)}")


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("MONTAGE_HOME") or default_home()).expanduser().resolve()


def _embedded(env: Mapping[str, str]) -> Profile:
    home = _home(env)
    url = f"sqlite:///{home / 'platform.sqlite'}"
    storage = Path(env.get("MONTAGE_STORAGE_ROOT") or home / "storage").expanduser().resolve()
    return Profile(
        name="embedded",
        home=home,
        database_url=url,
        tables_database_url=url,
        storage_root=storage,
        media_root=home / "media",
        s3=None,
        secret_env=frozenset(),
    )


def _production(env: Mapping[str, str]) -> Profile:
    missing = [var for var in PRODUCTION_REQUIRED if not env.get(var)]
    if missing:
        raise ProfileError(
            f"{PROFILE_VAR}=production needs {', '.join(missing)} set "
            f"(see README.md, 'Profiles'); or unset {PROFILE_VAR} for the embedded profile"
        )
    tables_var = (
        "MONTAGE_TABLES_DATABASE_URL" if env.get("MONTAGE_TABLES_DATABASE_URL") else "MONTAGE_DATABASE_URL"
    )
    return Profile(
        name="production",
        home=_home(env),
        database_url="MONTAGE_DATABASE_URL",
        tables_database_url=tables_var,
        storage_root=Path(env["MONTAGE_STORAGE_ROOT"]),
        media_root=None,
        s3=S3Settings(
            bucket=env["MONTAGE_S3_BUCKET"],
            prefix=env.get("MONTAGE_S3_PREFIX", "montage/"),
            endpoint_url=env.get("MONTAGE_S3_ENDPOINT_URL") or None,
            region_name=env.get("MONTAGE_S3_REGION") or None,
        ),
        secret_env=frozenset({"database_url", "tables_database_url"}),
        database_url_resolved=env["MONTAGE_DATABASE_URL"],
        tables_database_url_resolved=env[tables_var],
    )
