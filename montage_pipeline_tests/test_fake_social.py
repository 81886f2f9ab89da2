"""The fakes speak the platforms' protocols, driven with plain `requests` (no client code of ours)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from montage_pipeline.fake_social import InstagramFake, TikTokFake, YouTubeFake


def test_youtube_resumable_upload_answers_308_with_range_and_survives_a_lost_final_response() -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        start = requests.post(
            f"{yt.url}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
            json={"snippet": {"title": "t"}, "status": {"privacyStatus": "unlisted"}},
            headers={**auth, "X-Upload-Content-Length": "10", "X-Upload-Content-Type": "video/mp4"},
            timeout=5,
        )
        session = start.headers["Location"]
        first = requests.put(session, data=b"01234", headers={"Content-Range": "bytes 0-4/10"}, timeout=5)
        assert (first.status_code, first.headers["Range"]) == (308, "bytes=0-4")
        yt.inject("lost_response", method="PUT")
        with pytest.raises(requests.ConnectionError):
            requests.put(session, data=b"56789", headers={"Content-Range": "bytes 5-9/10"}, timeout=5)
        status = requests.put(session, headers={"Content-Range": "bytes */10"}, timeout=5)
        assert status.status_code == 200 and status.json()["id"] == yt.posts[0]["id"]
        assert len(yt.posts) == 1
        assert (
            requests.put(f"{session}x", headers={"Content-Range": "bytes */10"}, timeout=5).status_code == 404
        )


def test_youtube_refuses_expired_tokens_and_refreshes_with_the_client_secret() -> None:
    with YouTubeFake() as yt:
        issued = yt.issue_tokens("acct")
        yt.expire_access_tokens()
        refused = requests.get(
            f"{yt.url}/youtube/v3/channels?part=id&mine=true",
            headers={"Authorization": f"Bearer {issued['access_token']}"},
            timeout=5,
        )
        assert refused.status_code == 401
        form = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        bad = requests.post(
            f"{yt.url}/token", data={**form, "client_id": "x", "client_secret": "y"}, timeout=5
        )
        assert bad.status_code == 401
        good = requests.post(
            f"{yt.url}/token",
            data={**form, "client_id": "test-client-id", "client_secret": "test-client-secret"},
            timeout=5,
        )
        assert good.status_code == 200 and good.json()["access_token"] != issued["access_token"]


def test_tiktok_rotates_refresh_tokens_and_enforces_chunk_rules() -> None:
    with TikTokFake(min_chunk_bytes=100, max_chunk_bytes=1000) as tt:
        issued = tt.issue_tokens("acct")
        form = {
            "client_key": "test-client-id",
            "client_secret": "test-client-secret",
            "grant_type": "refresh_token",
        }
        first = requests.post(
            f"{tt.url}/v2/oauth/token/", data={**form, "refresh_token": issued["refresh_token"]}, timeout=5
        )
        assert first.status_code == 200
        reused = requests.post(
            f"{tt.url}/v2/oauth/token/", data={**form, "refresh_token": issued["refresh_token"]}, timeout=5
        )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        auth = {"Authorization": f"Bearer {first.json()['access_token']}"}
        bad = requests.post(
            f"{tt.url}/v2/post/publish/inbox/video/init/",
            json={
                "source_info": {
                    "source": "FILE_UPLOAD",
                    "video_size": 1000,
                    "chunk_size": 300,
                    "total_chunk_count": 4,
                }
            },
            headers=auth,
            timeout=5,
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_params"
        init = requests.post(
            f"{tt.url}/v2/post/publish/inbox/video/init/",
            json={
                "source_info": {
                    "source": "FILE_UPLOAD",
                    "video_size": 1000,
                    "chunk_size": 300,
                    "total_chunk_count": 3,
                }
            },
            headers=auth,
            timeout=5,
        ).json()["data"]
        url, data = init["upload_url"], bytes(range(256)) * 4
        for first_b, last_b in ((0, 299), (300, 599), (600, 999)):
            part = data[first_b : last_b + 1]
            code = requests.put(
                url, data=part, headers={"Content-Range": f"bytes {first_b}-{last_b}/1000"}, timeout=5
            )
            assert code.status_code == (201 if last_b == 999 else 206)
        status = lambda: requests.post(  # noqa: E731
            f"{tt.url}/v2/post/publish/status/fetch/",
            json={"publish_id": init["publish_id"]},
            headers=auth,
            timeout=5,
        ).json()["data"]["status"]
        assert status() == "PROCESSING_UPLOAD"
        assert status() == "SEND_TO_USER_INBOX"
        assert len(tt.posts) == 1 and tt.posts[0]["bytes"] == 1000


def test_instagram_publishes_only_finished_containers_within_the_quota(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with InstagramFake(quota_total=1, processing_polls=1) as ig:
        token = ig.issue_tokens("17841")["access_token"]
        base = f"{ig.url}/v21.0"
        auth = {"Authorization": f"Bearer {token}"}
        created = requests.post(
            f"{base}/17841/media",
            data={"media_type": "REELS", "video_url": video.as_uri(), "caption": "c"},
            headers=auth,
            timeout=5,
        ).json()["id"]
        early = requests.post(
            f"{base}/17841/media_publish", data={"creation_id": created}, headers=auth, timeout=5
        )
        assert early.status_code == 400 and early.json()["error"]["code"] == 9007
        for _ in range(50):
            code = requests.get(
                f"{base}/{created}", params={"fields": "status_code"}, headers=auth, timeout=5
            ).json()
            if code["status_code"] == "FINISHED":
                break
            time.sleep(0.02)
        assert code["status_code"] == "FINISHED"
        published = requests.post(
            f"{base}/17841/media_publish", data={"creation_id": created}, headers=auth, timeout=5
        )
        assert published.status_code == 200
        again = requests.post(
            f"{base}/17841/media_publish", data={"creation_id": created}, headers=auth, timeout=5
        )
        assert again.status_code == 400  # never twice
        limit = requests.get(f"{base}/17841/content_publishing_limit", headers=auth, timeout=5).json()[
            "data"
        ][0]
        assert limit["quota_usage"] == 1 == limit["config"]["quota_total"]
        assert len(ig.posts) == 1
