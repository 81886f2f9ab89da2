"""Connections to the local fake platforms, and the resources that point `social_posts` at them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from cryptography.fernet import Fernet
from sqlalchemy import delete

from montage_pipeline.defs.assets.publish import s3_exports, social_posts
from montage_pipeline.defs.resources.social import (
    InstagramResource,
    TikTokResource,
    TokenVault,
    YouTubeResource,
)
from montage_pipeline.platform.models import SocialConnection, SocialPlatform, SocialPost
from montage_pipeline.publishing.tokens import TokenCipher
from montage_pipeline_tests.fake_social import InstagramFake, TikTokFake, YouTubeFake
from montage_pipeline_tests.fake_social.base import FakeServer
from montage_pipeline_tests.publish_support import BUILT, WEEK, BuiltWeek

KEY = Fernet.generate_key().decode()
# (handle, platform, auto_post_weekly): only ace (Creator+, featured, opted in) may be posted for.
CONNECTIONS = [
    ("ace", SocialPlatform.YOUTUBE, True),
    ("ace", SocialPlatform.TIKTOK, True),
    ("ace", SocialPlatform.INSTAGRAM, True),
    ("blaze", SocialPlatform.YOUTUBE, False),  # Creator+ but did not opt in
    ("cobalt", SocialPlatform.YOUTUBE, True),  # free tier
    ("dusk", SocialPlatform.TIKTOK, True),  # Creator, not Creator+
    ("ember", SocialPlatform.INSTAGRAM, True),  # opted out of being featured
]


@dataclass
class Fakes:
    youtube: YouTubeFake
    tiktok: TikTokFake
    instagram: InstagramFake
    tokens: dict[tuple[str, SocialPlatform], dict[str, Any]]

    def of(self, platform: SocialPlatform) -> FakeServer:
        return {"youtube": self.youtube, "tiktok": self.tiktok, "instagram": self.instagram}[platform.value]

    def all_secrets(self) -> list[str]:
        found = [KEY, "test-client-secret"]
        for fake in (self.youtube, self.tiktok, self.instagram):
            found += list(fake.access_tokens) + list(fake.refresh_tokens)
        for issued in self.tokens.values():
            found += [issued["access_token"], issued["refresh_token"]]
        return found


def start_fakes(week: BuiltWeek, expires_in: timedelta = timedelta(hours=1)) -> Iterator[Fakes]:
    """Fresh fakes, the week's outbox emptied, and connections holding tokens the fakes issued."""
    youtube = YouTubeFake(processing_polls=1).start()
    tiktok = TikTokFake(min_chunk_bytes=64 * 1024, max_chunk_bytes=1024 * 1024, processing_polls=1).start()
    instagram = InstagramFake(processing_polls=1).start()
    fakes = Fakes(youtube, tiktok, instagram, {})
    cipher = TokenCipher(KEY)
    ids = week.user_ids()
    with week.session() as s, s.begin():
        s.execute(delete(SocialPost))
        s.execute(delete(SocialConnection))
        for handle, platform, auto in CONNECTIONS:
            account = f"{handle}-{platform.value}"
            issued = fakes.of(platform).issue_tokens(account)
            fakes.tokens[(handle, platform)] = issued
            s.add(
                SocialConnection(
                    user_id=ids[handle],
                    platform=platform,
                    account_id=account,
                    access_token_encrypted=cipher.encrypt(issued["access_token"]),
                    refresh_token_encrypted=cipher.encrypt(issued["refresh_token"]),
                    token_expires_at=datetime.now(UTC) + expires_in,
                    auto_post_weekly=auto,
                )
            )
    try:
        yield fakes
    finally:
        for fake in (youtube, tiktok, instagram):
            fake.stop()


def social_resources(fakes: Fakes, **enabled: bool) -> dict[str, Any]:
    on = {"youtube": True, "tiktok": True, "instagram": True, **enabled}
    return {
        "token_vault": TokenVault(fernet_keys=KEY),
        "youtube": YouTubeResource(
            enabled=on["youtube"],
            client_id="test-client-id",
            client_secret="test-client-secret",
            api_url=fakes.youtube.url,
            token_url=f"{fakes.youtube.url}/token",
            chunk_bytes=256 * 1024,
        ),
        "tiktok": TikTokResource(
            enabled=on["tiktok"],
            client_key="test-client-id",
            client_secret="test-client-secret",
            api_url=fakes.tiktok.url,
            chunk_bytes=128 * 1024,
            min_chunk_bytes=64 * 1024,
            poll_interval_s=0.05,
        ),
        "instagram": InstagramResource(
            enabled=on["instagram"],
            graph_url=fakes.instagram.url,
            refresh_url=fakes.instagram.url,
            poll_interval_s=0.05,
        ),
    }


def post_week(week: BuiltWeek, fakes: Fakes, **kwargs: Any) -> dg.ExecuteInProcessResult:
    enabled = kwargs.pop("enabled", {})
    return dg.materialize(
        [*BUILT, s3_exports, social_posts],
        selection=[social_posts],
        partition_key=WEEK,
        resources=week.resources(**social_resources(fakes, **enabled)),
        run_config={"ops": {"social_posts": {"config": {"attempts_per_post": 4, "backoff_base_s": 0.02}}}},
        **kwargs,
    )
