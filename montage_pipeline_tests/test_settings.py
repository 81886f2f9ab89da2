"""The one settings object: every variable documented once, checked at load, secrets never shown."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from montage_pipeline.settings import (
    DAGSTER_INSTANCE_VARS,
    ENV_VARS,
    Settings,
    SettingsError,
    load_settings,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented() -> set[str]:
    """The variables named in the first column of the README's table under 'Profiles'."""
    section = README.read_text().split("## Profiles", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_readme_table_lists_exactly_the_variables_the_settings_read() -> None:
    assert len(ENV_VARS) == len(set(ENV_VARS))
    assert _documented() == set(ENV_VARS) | set(DAGSTER_INSTANCE_VARS)


class _Recording(Mapping[str, str]):
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.env[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(key)
        return self.env.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


EVERYTHING_ON = {
    "MONTAGE_PROFILE": "production",
    "MONTAGE_DATABASE_URL": "postgresql+psycopg2://u:s3cret@db/platform",
    "MONTAGE_STORAGE_ROOT": "/srv/uploads",
    "MONTAGE_S3_BUCKET": "montages",
    "YOUTUBE_API_ENABLED": "true",
    "YOUTUBE_CLIENT_ID": "id",
    "YOUTUBE_CLIENT_SECRET": "yt-s3cret",
    "TIKTOK_API_ENABLED": "true",
    "TIKTOK_CLIENT_KEY": "key",
    "TIKTOK_CLIENT_SECRET": "tt-s3cret",
    "INSTAGRAM_API_ENABLED": "true",
    "MONTAGE_TOKEN_KEYS": "fernet-s3cret",
    "MONTAGE_SMTP_PASSWORD": "smtp-s3cret",
    "MONTAGE_ALERT_WEBHOOK_URL": "https://hooks.example.com/s3cret",
    "MONTAGE_ADMIN_TOKEN": "admin-s3cret",
}


def test_the_settings_read_no_variable_outside_the_list() -> None:
    env = _Recording(EVERYTHING_ON)
    load_settings(env)
    assert env.read <= set(ENV_VARS), sorted(env.read - set(ENV_VARS))
    assert {"YOUTUBE_PRIVACY", "TIKTOK_POST_MODE", "INSTAGRAM_GRAPH_URL"} <= env.read


def test_secrets_stay_out_of_repr_and_the_recorded_snapshot() -> None:
    settings = load_settings(EVERYTHING_ON)
    shown = repr(settings) + repr(settings.snapshot())
    assert "s3cret" not in shown
    assert settings.snapshot()["MONTAGE_TOKEN_KEYS"] == "set"
    assert settings.api.admin_token.value == "admin-s3cret"  # the value is there for who needs it


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    settings = load_settings({"MONTAGE_HOME": str(tmp_path)})
    assert isinstance(settings, Settings)
    assert (settings.week_timezone, settings.target_duration_s, settings.music_library) == (
        "UTC",
        180.0,
        None,
    )
    assert (settings.schedule.hour, settings.schedule.minute, settings.schedule.default_status) == (
        2,
        0,
        "STOPPED",
    )
    assert load_settings(EVERYTHING_ON).schedule.default_status == "RUNNING"
    assert not settings.posting_enabled and settings.mail.port == 587 and settings.mail.starttls


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("WEEKLY_MONTAGE_DURATION", "three minutes", "is not a number of seconds"),
        ("WEEKLY_MONTAGE_DURATION", "5", "outside 15..3600"),
        ("MONTAGE_WEEK_TIMEZONE", "Mars/Olympus", "is not an IANA timezone name"),
        ("MONTAGE_SCHEDULE_HOUR", "25", "outside 0..23"),
        ("MONTAGE_SCHEDULE_MINUTE", "half past", "is not a whole number"),
        ("MONTAGE_SCHEDULE_DEFAULT_STATUS", "paused", "is not one of: RUNNING, STOPPED"),
        ("MONTAGE_SMTP_PORT", "0", "outside 1..65535"),
        ("MONTAGE_SMTP_STARTTLS", "maybe", "is not a yes/no value"),
        ("MONTAGE_URL_EXPIRES_S", "10", "outside 60..604800"),
        ("MONTAGE_MUSIC_LIBRARY", "/no/such/folder", "is not a folder"),
        ("MONTAGE_CLIP_MAX_SIDE_PX", "-1", "must be positive"),
        ("YOUTUBE_API_ENABLED", "perhaps", "is not a yes/no value"),
    ],
)
def test_a_bad_value_fails_at_load_naming_the_variable(var: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=rf"{var}=.*{re.escape(says)}"):
        load_settings({var: value})
    with pytest.raises(ValueError):  # as before, a bad value is a ValueError
        load_settings({var: value})


def test_an_enabled_platform_without_its_secret_fails_at_load() -> None:
    with pytest.raises(SettingsError, match="YOUTUBE_API_ENABLED needs YOUTUBE_CLIENT_ID"):
        load_settings({"YOUTUBE_API_ENABLED": "1"})
    with pytest.raises(SettingsError, match="TIKTOK_POST_MODE='draft' is not one of: inbox, direct"):
        load_settings({**EVERYTHING_ON, "TIKTOK_POST_MODE": "draft"})


def test_every_rule_default_comes_from_the_one_rules_object() -> None:
    """The run config of both assets and the cores' rule objects default from `rules.RULES`."""
    import dataclasses

    from montage_pipeline.defs.assets.analysis import ScoredHighlightsConfig
    from montage_pipeline.defs.assets.selection import SelectedClipsConfig
    from montage_pipeline.media.timeline import TimelineRules
    from montage_pipeline.media.windows import WindowRules
    from montage_pipeline.rules import RULES
    from montage_pipeline.selection.ranking import RankingRules

    rules = dataclasses.asdict(RULES)
    # The target length's default is the settings' (WEEKLY_MONTAGE_DURATION, else RULES'): None here.
    assert ScoredHighlightsConfig().target_duration_s is None
    for config in (SelectedClipsConfig(), ScoredHighlightsConfig()):
        values = config.model_dump()
        shared = {name: values[name] for name in values if name in rules and name != "target_duration_s"}
        assert shared == {name: rules[name] for name in shared}, type(config).__name__
    edit, windows, ranking = TimelineRules(), WindowRules(), RankingRules()
    assert (edit.target_s, edit.max_clips, edit.per_user_cap) == (180.0, 15, 2)
    assert (edit.game_diversity_penalty, edit.max_game_share, edit.min_score) == (0.1, 0.5, 0.08)
    assert (edit.min_len_s, edit.max_len_s, edit.tempo_range_bpm) == (
        RULES.min_window_s,
        RULES.max_window_s,
        (RULES.tempo_min_bpm, RULES.tempo_max_bpm),
    )
    assert (windows.preferred_len_s, windows.lead_in_s) == (RULES.preferred_window_s, RULES.lead_in_s)
    assert ranking.weight_engagement == RULES.weight_engagement
    assert load_settings({}).target_duration_s == RULES.target_duration_s
