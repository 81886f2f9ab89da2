"""The social platforms and the token vault as Dagster resources; secrets arrive as `EnvVar`s.

Each platform is off unless enabled (`YOUTUBE_API_ENABLED`, `TIKTOK_API_ENABLED`,
`INSTAGRAM_API_ENABLED`); the API base URLs are settings so tests and the demo can point them at the
local fakes.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg

from montage_pipeline.publishing.instagram import InstagramClient
from montage_pipeline.publishing.tiktok import MIB, TikTokClient
from montage_pipeline.publishing.tokens import TokenCipher
from montage_pipeline.publishing.youtube import YouTubeClient


class TokenVault(dg.ConfigurableResource):
    """Fernet keys (comma-separated, newest first) that decrypt the stored OAuth tokens."""

    fernet_keys: str = ""

    def cipher(self) -> TokenCipher:
        return TokenCipher(self.fernet_keys)


class YouTubeResource(dg.ConfigurableResource):
    enabled: bool = False
    client_id: str = ""
    client_secret: str = ""
    api_url: str = "https://youtube.googleapis.com/"
    token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
    privacy: Literal["unlisted", "private", "public"] = "unlisted"
    publish_at: str = ""  # RFC 3339; schedules the video (it stays private until then)
    chunk_bytes: int = 8 * MIB  # a multiple of 256 KiB

    def client(self) -> YouTubeClient | None:
        if not self.enabled:
            return None
        return YouTubeClient(
            self.api_url,
            self.token_url,
            self.client_id,
            self.client_secret,
            privacy=self.privacy,
            publish_at=self.publish_at or None,
            chunk_bytes=self.chunk_bytes,
        )


class TikTokResource(dg.ConfigurableResource):
    enabled: bool = False
    client_key: str = ""
    client_secret: str = ""
    api_url: str = "https://open.tiktokapis.com"
    # inbox: a draft in the creator's TikTok inbox (allowed for unaudited apps); direct: posted publicly.
    mode: Literal["inbox", "direct"] = "inbox"
    privacy_level: str = "SELF_ONLY"
    chunk_bytes: int = 10 * MIB
    min_chunk_bytes: int = 5 * MIB  # TikTok's rule; lower only against a test server
    poll_interval_s: float = 2.0

    def client(self) -> TikTokClient | None:
        if not self.enabled:
            return None
        return TikTokClient(
            self.api_url,
            self.client_key,
            self.client_secret,
            mode=self.mode,
            privacy_level=self.privacy_level,
            chunk_bytes=self.chunk_bytes,
            min_chunk_bytes=self.min_chunk_bytes,
            poll_interval_s=self.poll_interval_s,
        )


class InstagramResource(dg.ConfigurableResource):
    enabled: bool = False
    graph_url: str = "https://graph.facebook.com"
    refresh_url: str = "https://graph.instagram.com"
    api_version: str = "v21.0"
    poll_interval_s: float = 3.0

    def client(self) -> InstagramClient | None:
        if not self.enabled:
            return None
        return InstagramClient(
            self.graph_url, self.refresh_url, self.api_version, poll_interval_s=self.poll_interval_s
        )
