"""Plain parts of publishing: chapters, chunk plans, token encryption and scrubbing, the token vault."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import SocialConnection, SocialPlatform, User
from montage_pipeline.publishing.content import (
    caption,
    chapters,
    clean_text,
    credits,
    description,
    fit_description,
    fit_tags,
    fit_title,
    tags,
)
from montage_pipeline.publishing.credentials import ConnectionTokens, NewTokens
from montage_pipeline.publishing.tiktok import MIB, chunk_plan, chunk_ranges
from montage_pipeline.publishing.tokens import TokenCipher, TokenKeyError, scrub

SPAN = EditSpan(
    order=0, clip_id="c", job_id=1, user_id=1, user_handle="ace", game="Apex", source_path="/x.mp4",
    source_sha256="0", source_in_s=0, source_out_s=8, montage_in_s=2, montage_out_s=10, peak_source_s=4,
    peak_montage_s=6, peak_on_downbeat=True, in_beat=0, out_beat=16, tempo_bpm=120, beat_s=0.5, intro_s=2,
    score=0.9, score_breakdown={}, credit="@ace · Apex", transition_in="cut", transition_s=0,
    source_fps=30, source_width=1920, source_height=1080, source_rotation=0, source_has_audio=True,
)  # fmt: skip


def _spans(*runs: tuple[str, float]) -> list[EditSpan]:
    out, t = [], 2.0
    for i, (handle, length) in enumerate(runs):
        out.append(replace(SPAN, order=i, user_handle=handle, montage_in_s=t, montage_out_s=t + length))
        t += length
    return out


def test_chapters_follow_youtubes_rules() -> None:
    spans = _spans(("ace", 12), ("blaze", 15), ("cobalt", 4), ("dusk", 20))
    marks = chapters(spans, 53.0)
    assert marks[0].start_s == 0.0 and marks[0].label.startswith("@ace")  # the title card joins ace
    assert len(marks) >= 3
    ends = [m.start_s for m in marks[1:]] + [53.0]
    assert all(end - m.start_s >= 10 for m, end in zip(marks, ends, strict=True))
    assert "@cobalt" not in [m.label.split(" ")[0] for m in marks]  # 4 s: too short for a chapter
    text = description("Weekly Highlights - January 27, 2025", spans, 53.0)
    assert "0:00 @ace · Apex" in text and "Featuring @ace, @blaze, @cobalt, @dusk" in text


def test_no_chapters_when_youtube_would_ignore_them() -> None:
    assert chapters(_spans(("ace", 12), ("blaze", 12)), 26.0) == []  # only two


def test_handles_and_game_names_are_cleaned_wherever_they_enter_post_text() -> None:
    nasty = _spans(("ev\u202eli<script>\x07", 12), ("blaze\nFAKE LINE", 15), ("dusk", 20))
    nasty[1] = replace(nasty[1], game="Apex <3\tLegends\x00")
    text = description("Weekly <Highlights>", nasty, 53.0)
    pieces = [text, caption("Weekly <Highlights>", nasty), *tags(nasty), *credits(nasty)]
    pieces += [c.label for c in chapters(nasty, 53.0)]
    for piece in pieces:
        assert not {"<", ">", "\x07", "\x00", "\t", "\u202e"} & set(piece), piece
    assert "@blaze FAKE LINE" in credits(nasty)  # a newline in a handle cannot start a line of its own
    assert "Apex \u20393 Legends" in text and "#Apex3Legends" in caption("t", nasty)
    assert clean_text("  a\u2028b  ") == "a b"


def test_titles_descriptions_and_tags_fit_youtubes_limits() -> None:
    assert fit_title("x" * 99) == "x" * 99
    long = fit_title("<Clutch> " * 30)
    assert len(long) <= 100 and long.endswith("\u2026") and "<" not in long
    many = [replace(SPAN, order=i, user_handle=f"ü{i}" + "ö" * 40, game=f"Spiel {i} 🎮") for i in range(200)]
    text = description("Weekly Highlights", many, 600.0)
    assert len(text) < 5000 < len(text) * 2  # a character limit alone would let twice the bytes through
    assert len(text.encode()) <= 5000 and text.startswith("Weekly Highlights:")
    assert len(fit_description("€" * 2000).encode()) == 4998  # 3 bytes each: never half a character
    kept = fit_tags(f"tag number {i}" for i in range(100))
    assert sum(len(t) + 3 for t in kept) - 1 <= 500 and len(set(kept)) == len(kept)


@pytest.mark.parametrize(
    ("size", "preferred"),
    [(3 * MIB, 10 * MIB), (7 * MIB, 10 * MIB), (95 * MIB, 10 * MIB), (9000 * MIB, 5 * MIB)],
)
def test_tiktok_chunk_plans_follow_the_media_transfer_rules(size: int, preferred: int) -> None:
    chunk, count = chunk_plan(size, preferred)
    ranges = chunk_ranges(size, chunk, count)
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    if size < 5 * MIB:
        assert (chunk, count) == (size, 1)
    else:
        assert 5 * MIB <= chunk <= 64 * MIB and count == size // chunk <= 1000
        assert ranges[-1][1] - ranges[-1][0] + 1 <= 128 * MIB


def test_tokens_are_encrypted_at_rest_and_keys_rotate() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = TokenCipher(old).encrypt("secret-token")
    assert b"secret-token" not in stored
    assert TokenCipher(f"{new},{old}").decrypt(stored) == "secret-token"  # rotation keeps old ones readable
    with pytest.raises(TokenKeyError) as info:
        TokenCipher(new).decrypt(stored)
    assert "secret-token" not in str(info.value)
    with pytest.raises(TokenKeyError, match="MONTAGE_TOKEN_KEYS"):
        TokenCipher("")


def test_scrub_hides_tokens_in_any_shape() -> None:
    text = (
        "Bearer abc.def token {'access_token': 'zz9'} url?access_token=qq&x=1 refresh_token=rr custom-secret"
    )
    clean = scrub(text, ["custom-secret"])
    for secret in ("abc.def", "zz9", "qq", "rr", "custom-secret"):
        assert secret not in clean


def test_one_refresh_per_connection_even_when_asked_twice(sqlite_url: str) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    cipher = TokenCipher(Fernet.generate_key().decode())
    sessions = sessionmaker(create_engine(sqlite_url), expire_on_commit=False)
    with sessions() as s, s.begin():
        user = User(handle="ace", email="a@example.com")
        s.add(user)
        s.flush()
        conn = SocialConnection(
            user_id=user.id,
            platform=SocialPlatform.TIKTOK,
            account_id="ace",
            access_token_encrypted=cipher.encrypt("old-access"),
            refresh_token_encrypted=cipher.encrypt("refresh-1"),
            token_expires_at=datetime.now(UTC) + timedelta(seconds=10),
        )
        s.add(conn)
        s.flush()
        conn_id = conn.id
    calls: list[str | None] = []

    def refresher(refresh: str | None, current: str) -> NewTokens:
        calls.append(refresh)
        return NewTokens(f"access-{len(calls)}", 3600, f"refresh-{len(calls) + 1}")

    first = ConnectionTokens(sessions, conn_id, cipher, refresher)
    second = ConnectionTokens(sessions, conn_id, cipher, refresher)
    assert first.get() == "access-1"  # expiring within the margin: refreshed before use
    assert second.get() == "access-1"  # fresh now: no second refresh with a used refresh token
    assert second.get(force_refresh=True, stale="old-access") == "access-1"  # refused an old one: no-op
    assert calls == ["refresh-1"]
    assert second.get(force_refresh=True, stale="access-1") == "access-2"
    assert calls == ["refresh-1", "refresh-2"]  # the rotated refresh token was stored and used


def test_posting_is_off_by_default_and_a_half_configured_platform_fails_at_load() -> None:
    from montage_pipeline.defs.resources.wiring import build_social_resources
    from montage_pipeline.profiles import ProfileError
    from montage_pipeline.settings import load_settings

    off = build_social_resources(load_settings({}))
    assert not (off["youtube"].enabled or off["tiktok"].enabled or off["instagram"].enabled)
    with pytest.raises(ProfileError, match="YOUTUBE_CLIENT_ID"):
        build_social_resources(load_settings({"YOUTUBE_API_ENABLED": "true"}))
    with pytest.raises(ProfileError, match="MONTAGE_TOKEN_KEYS"):
        build_social_resources(load_settings({"INSTAGRAM_API_ENABLED": "1"}))
    on = build_social_resources(
        load_settings(
            {
                "TIKTOK_API_ENABLED": "yes",
                "TIKTOK_CLIENT_KEY": "k",
                "TIKTOK_CLIENT_SECRET": "s",
                "MONTAGE_TOKEN_KEYS": "x",
                "TIKTOK_API_URL": "http://127.0.0.1:9",
            }
        )
    )
    assert (
        on["tiktok"].enabled and on["tiktok"].api_url == "http://127.0.0.1:9" and on["tiktok"].mode == "inbox"
    )
