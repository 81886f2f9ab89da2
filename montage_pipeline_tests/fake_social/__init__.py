"""Local stand-ins for YouTube, TikTok and Instagram and their OAuth token endpoints (tests, offline demo)."""

from montage_pipeline_tests.fake_social.base import FakeServer, Fault
from montage_pipeline_tests.fake_social.instagram import InstagramFake
from montage_pipeline_tests.fake_social.tiktok import TikTokFake
from montage_pipeline_tests.fake_social.youtube import YouTubeFake

__all__ = ["FakeServer", "Fault", "InstagramFake", "TikTokFake", "YouTubeFake"]
