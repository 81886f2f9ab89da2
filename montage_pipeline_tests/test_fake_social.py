"""The fakes speak the platforms' protocols and fail as asked, driven with plain `requests`."""

from __future__ import annotations

import functools
import hashlib
import http.client
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from montage_pipeline_tests.fake_social import InstagramFake, TikTokFake, YouTubeFake

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4  # 1036 bytes that pass an "is it an MP4" check
YT_START = "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status"
YT_VIDEO = {"snippet": {"title": "Week 5"}, "status": {"privacyStatus": "unlisted"}}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- YouTube ----------------------------------------------------------------------------------------------
def _yt_start(yt: YouTubeFake, token: str, size: int, video: dict[str, Any] = YT_VIDEO) -> requests.Response:
    return requests.post(
        f"{yt.url}{YT_START}",
        json=video,
        headers={
            **_bearer(token),
            "X-Upload-Content-Length": str(size),
            "X-Upload-Content-Type": "video/mp4",
        },
        timeout=5,
    )


def _put(url: str, data: bytes, content_range: str | None = None) -> requests.Response:
    headers = {"Content-Range": content_range} if content_range else {}
    return requests.put(url, data=data, headers=headers, timeout=5)


def test_youtube_resumable_upload_end_to_end() -> None:
    with YouTubeFake(processing_polls=1) as yt:
        token = yt.issue_tokens("acct")["access_token"]
        # The library's rootUrl ends in "/": a doubled slash and extra query parameters must not matter.
        start = requests.post(
            f"{yt.url}//upload/youtube/v3/videos?alt=json&part=status,snippet&uploadType=resumable",
            json=YT_VIDEO,
            headers={
                **_bearer(token),
                "X-Upload-Content-Length": "1036",
                "X-Upload-Content-Type": "video/mp4",
            },
            timeout=5,
        )
        assert (start.status_code, start.content) == (200, b"")
        session = start.headers["Location"]
        assert session.startswith(f"{yt.url}/upload/youtube/v3/videos?uploadType=resumable&upload_id=")
        empty = _put(session, b"", "bytes */1036")
        assert empty.status_code == 308 and "Range" not in empty.headers
        assert _put(session, MP4[:400], "bytes 0-399/1036").headers["Range"] == "bytes=0-399"
        overlap = _put(session, MP4[300:700], "bytes 300-699/1036")  # only the new tail counts
        assert (overlap.status_code, overlap.headers["Range"]) == (308, "bytes=0-699")
        gap = _put(session, MP4[800:], "bytes 800-1035/1036")
        assert gap.status_code == 400 and gap.json()["error"]["errors"][0]["reason"] == "badRequest"
        done = _put(session, MP4[700:], "bytes 700-1035/1036")
        video = done.json()
        assert done.status_code == 200 and video["kind"] == "youtube#video" and len(video["id"]) == 11
        assert video["status"] == {"privacyStatus": "unlisted", "uploadStatus": "uploaded"}
        assert video["snippet"]["title"] == "Week 5"
        assert len(yt.posts) == 1
        assert yt.posts[0]["bytes"] == 1036 and yt.posts[0]["sha256"] == hashlib.sha256(MP4).hexdigest()
        assert yt.posts[0]["account_id"] == "acct" and yt.posts[0]["metadata"] == YT_VIDEO

        thumb = requests.post(
            f"{yt.url}/upload/youtube/v3/thumbnails/set?videoId={video['id']}&uploadType=media",
            data=b"\xff\xd8jpeg",
            headers={**_bearer(token), "Content-Type": "image/jpeg"},
            timeout=5,
        )
        assert thumb.status_code == 200 and thumb.json()["kind"] == "youtube#thumbnailSetResponse"
        assert thumb.json()["items"][0]["default"]["url"]
        assert yt.posts[0]["thumbnail_bytes"] == 6
        unknown = requests.post(
            f"{yt.url}/upload/youtube/v3/thumbnails/set?videoId=nope",
            data=b"x",
            headers=_bearer(token),
            timeout=5,
        )
        assert unknown.status_code == 404

        def upload_status() -> str:
            resp = requests.get(
                f"{yt.url}/youtube/v3/videos",
                params={"part": "status", "id": video["id"]},
                headers=_bearer(token),
                timeout=5,
            )
            return str(resp.json()["items"][0]["status"]["uploadStatus"])

        assert [upload_status(), upload_status()] == ["uploaded", "processed"]  # processing_polls=1
        none = requests.get(
            f"{yt.url}/youtube/v3/videos?part=status&id=zzz", headers=_bearer(token), timeout=5
        )
        assert none.json()["items"] == []
        channels = requests.get(
            f"{yt.url}/youtube/v3/channels?part=id&mine=true", headers=_bearer(token), timeout=5
        )
        assert channels.json()["items"] == [{"kind": "youtube#channel", "id": "UC-acct"}]
        assert ("POST", "/upload/youtube/v3/videos", 200) in yt.requests_log  # path only, no query
        assert all("?" not in path for _, path, _ in yt.requests_log)


def test_youtube_single_shot_upload_and_metadata_rules() -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        single = _put(_yt_start(yt, token, len(MP4)).headers["Location"], MP4)
        assert single.status_code == 200 and len(yt.posts) == 1
        too_long = {"snippet": {"title": "x" * 101}, "status": {"privacyStatus": "public"}}
        scheduled_public = {
            "snippet": {"title": "t"},
            "status": {"privacyStatus": "public", "publishAt": "2025-02-03T17:00:00Z"},
        }
        no_privacy = {"snippet": {"title": "t"}, "status": {}}
        angled = {"snippet": {"title": "a <b> title"}, "status": {"privacyStatus": "public"}}
        angled_text = {
            "snippet": {"title": "t", "description": "x > y"},
            "status": {"privacyStatus": "public"},
        }
        # 2000 characters, 6000 bytes: the limit is in bytes
        wordy = {"snippet": {"title": "t", "description": "€" * 2000}, "status": {"privacyStatus": "public"}}
        for video in (too_long, scheduled_public, no_privacy, angled, angled_text, wordy):
            refused = _yt_start(yt, token, 10, video)
            assert refused.status_code == 400
            assert refused.json()["error"]["errors"][0]["reason"] == "invalidVideoMetadata"
        scheduled = {
            "snippet": {"title": "t"},
            "status": {"privacyStatus": "private", "publishAt": "2025-02-03T17:00:00Z"},
        }
        assert _yt_start(yt, token, 10, scheduled).status_code == 200


def test_youtube_status_query_after_a_lost_final_response_returns_the_video_once() -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        session = _yt_start(yt, token, 10).headers["Location"]
        assert _put(session, b"01234", "bytes 0-4/10").headers["Range"] == "bytes=0-4"
        yt.inject("lost_response", method="PUT")
        with pytest.raises(requests.ConnectionError):
            _put(session, b"56789", "bytes 5-9/10")
        assert len(yt.posts) == 1  # the platform acted; only its answer was lost
        status = _put(session, b"", "bytes */10")
        assert status.status_code == 200 and status.json()["id"] == yt.posts[0]["id"]
        again = _put(session, b"56789", "bytes 5-9/10")  # a blind resend finds the same video too
        assert again.status_code == 200 and again.json()["id"] == yt.posts[0]["id"]
        assert len(yt.posts) == 1
        assert ("PUT", "/upload/youtube/v3/videos", 0) in yt.requests_log
        upload_id = session.rpartition("upload_id=")[2]
        yt.expire_session(upload_id)
        gone = _put(session, b"", "bytes */10")
        assert gone.status_code == 404 and gone.json()["error"]["errors"][0]["reason"] == "notFound"


def test_youtube_refuses_expired_tokens_and_refreshes_without_rotating() -> None:
    with YouTubeFake() as yt:
        issued = yt.issue_tokens("acct")
        session = _yt_start(yt, issued["access_token"], 10).headers["Location"]
        yt.expire_access_tokens()
        channels = f"{yt.url}/youtube/v3/channels?part=id&mine=true"
        refused = requests.get(channels, headers=_bearer(issued["access_token"]), timeout=5)
        assert refused.status_code == 401 and refused.json()["error"]["errors"][0]["reason"] == "authError"
        chunk = requests.put(
            session,
            data=b"0123456789",
            headers={**_bearer(issued["access_token"]), "Content-Range": "bytes 0-9/10"},
            timeout=5,
        )
        assert chunk.status_code == 401  # a chunk's bearer, when sent, is checked
        form = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        client = {"client_id": "test-client-id", "client_secret": "test-client-secret"}
        bad_client = requests.post(f"{yt.url}/token", data={**form, "client_id": "x"}, timeout=5)
        assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
        unknown = requests.post(
            f"{yt.url}/token", data={**form, **client, "refresh_token": "nope"}, timeout=5
        )
        assert unknown.status_code == 400 and unknown.json() == {
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked.",
        }
        good = requests.post(f"{yt.url}/token", data={**form, **client}, timeout=5).json()
        assert good["expires_in"] == 3599 and good["token_type"] == "Bearer" and "refresh_token" not in good
        assert requests.get(channels, headers=_bearer(good["access_token"]), timeout=5).status_code == 200
        assert (
            requests.post(f"{yt.url}/token", data={**form, **client}, timeout=5).status_code == 200
        )  # reusable


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("500", 500, "backendError"),
        ("503", 503, "backendError"),
        ("429", 429, "rateLimitExceeded"),
        ("quota", 403, "quotaExceeded"),
        ("upload_limit", 400, "uploadLimitExceeded"),
    ],
)
def test_youtube_error_faults_answer_in_googles_shape_and_do_nothing(
    kind: str, status: int, reason: str
) -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        yt.inject(kind, method="POST", path_contains="/upload/youtube/v3/videos", retry_after=7)
        refused = _yt_start(yt, token, 10)
        assert refused.status_code == status
        error = refused.json()["error"]
        assert error["code"] == status and error["errors"][0]["reason"] == reason
        if kind == "quota":
            assert error["errors"][0]["domain"] == "youtube.quota"
        if kind == "429":
            assert refused.headers["Retry-After"] == "7"
        assert not yt.sessions and not yt.faults
        assert _yt_start(yt, token, 10).status_code == 200  # the fault was used up


def test_youtube_dropped_request_raises_connection_error_and_changes_nothing() -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        yt.inject("drop", path_contains="/upload/")
        with pytest.raises(requests.ConnectionError):
            _yt_start(yt, token, 10)
        assert not yt.sessions and yt.requests_log == [("POST", "/upload/youtube/v3/videos", 0)]


# -- TikTok -----------------------------------------------------------------------------------------------
def _tt_post(tt: TikTokFake, path: str, token: str, payload: dict[str, Any]) -> requests.Response:
    return requests.post(f"{tt.url}{path}", json=payload, headers=_bearer(token), timeout=5)


def _tt_source(size: int, chunk: int, count: int) -> dict[str, Any]:
    return {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}


def _tt_chunk(url: str, data: bytes, first: int, last: int, total: int) -> requests.Response:
    headers = {"Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{last}/{total}"}
    return requests.put(url, data=data[first : last + 1], headers=headers, timeout=5)


def _tt_status(tt: TikTokFake, token: str, publish_id: str) -> dict[str, Any]:
    data: dict[str, Any] = _tt_post(
        tt, "/v2/post/publish/status/fetch/", token, {"publish_id": publish_id}
    ).json()["data"]
    return data


def test_tiktok_refresh_token_rotates_and_an_expired_access_token_is_refused() -> None:
    with TikTokFake() as tt:
        issued = tt.issue_tokens("acct")
        form = {
            "client_key": "test-client-id",
            "client_secret": "test-client-secret",
            "grant_type": "refresh_token",
        }
        tt.inject("expire_token", path_contains="/creator_info/")
        expired = _tt_post(tt, "/v2/post/publish/creator_info/query/", issued["access_token"], {})
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "access_token_invalid"
        assert tt.account_for(issued["access_token"]) is None  # it stays expired
        first = requests.post(
            f"{tt.url}/v2/oauth/token/", data={**form, "refresh_token": issued["refresh_token"]}, timeout=5
        )
        body = first.json()
        assert first.status_code == 200 and body["open_id"] == "acct" and body["expires_in"] == 86400
        assert body["refresh_token"] != issued["refresh_token"] and body["refresh_expires_in"] == 31536000
        reused = requests.post(
            f"{tt.url}/v2/oauth/token/", data={**form, "refresh_token": issued["refresh_token"]}, timeout=5
        )
        assert (
            reused.status_code == 400
            and reused.json()["error"] == "invalid_grant"
            and reused.json()["log_id"]
        )
        bad_client = requests.post(
            f"{tt.url}/v2/oauth/token/",
            data={**form, "client_key": "x", "refresh_token": body["refresh_token"]},
            timeout=5,
        )
        assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
        info = _tt_post(tt, "/v2/post/publish/creator_info/query/", body["access_token"], {}).json()
        assert info["error"]["code"] == "ok" and info["data"]["creator_username"] == "acct"
        assert info["data"]["max_video_post_duration_sec"] == 600 and info["data"]["stitch_disabled"] is True
        assert "SELF_ONLY" in info["data"]["privacy_level_options"]


@pytest.mark.parametrize(
    ("size", "chunk", "count", "says"),
    [
        (50, 40, 2, "goes whole"),  # under the minimum: one chunk of the whole file
        (1000, 99, 10, "chunk_size must be within"),  # below the minimum chunk
        (5000, 1001, 4, "chunk_size must be within"),  # above the maximum chunk
        (1000, 300, 4, "total_chunk_count must be"),  # the count is video_size // chunk_size = 3
        (300, 400, 0, "must not exceed video_size"),
        (200_000, 100, 2000, "at most 1000 chunks"),
    ],
)
def test_tiktok_init_enforces_the_chunk_rules(size: int, chunk: int, count: int, says: str) -> None:
    with TikTokFake(min_chunk_bytes=100, max_chunk_bytes=1000) as tt:
        token = tt.issue_tokens("acct")["access_token"]
        refused = _tt_post(
            tt, "/v2/post/publish/inbox/video/init/", token, {"source_info": _tt_source(size, chunk, count)}
        )
        assert refused.status_code == 400
        assert refused.json()["data"] == {} and refused.json()["error"]["code"] == "invalid_params"
        assert says in refused.json()["error"]["message"]
        assert not tt.publishes


def test_tiktok_inbox_upload_follows_the_chunk_layout_and_posts_once() -> None:
    with TikTokFake(min_chunk_bytes=100, max_chunk_bytes=1000, processing_polls=1) as tt:
        token = tt.issue_tokens("acct")["access_token"]
        init = _tt_post(
            tt, "/v2/post/publish/inbox/video/init/", token, {"source_info": _tt_source(1036, 300, 3)}
        )
        assert init.json()["error"]["code"] == "ok"
        publish_id, url = init.json()["data"]["publish_id"], init.json()["data"]["upload_url"]
        assert publish_id.startswith("v_inbox_file~v2.") and url.startswith(f"{tt.url}/upload/?upload_id=")
        assert _tt_chunk(url, MP4, 300, 599, 1036).status_code == 416  # not the next chunk
        assert _tt_chunk(url, MP4, 0, 299, 1036).status_code == 206
        assert _tt_chunk(url, MP4, 0, 299, 1036).status_code == 206  # sent again: accepted, not counted
        misaligned = _tt_chunk(url, MP4, 300, 699, 1036)
        assert misaligned.status_code == 416 and misaligned.json()["error"]["code"] == "invalid_params"
        untyped = requests.put(
            url, data=MP4[300:600], headers={"Content-Range": "bytes 300-599/1036"}, timeout=5
        )
        assert untyped.status_code == 400  # Content-Type: video/mp4 is required
        assert _tt_status(tt, token, publish_id) == {
            "status": "PROCESSING_UPLOAD",
            "fail_reason": "",
            "publicaly_available_post_id": [],
            "uploaded_bytes": 300,
        }
        assert _tt_chunk(url, MP4, 300, 599, 1036).status_code == 206
        assert _tt_chunk(url, MP4, 600, 1035, 1036).status_code == 201  # the last chunk takes the remainder
        assert len(tt.posts) == 1 and tt.posts[0]["sha256"] == hashlib.sha256(MP4).hexdigest()
        assert tt.posts[0]["metadata"] == {"mode": "inbox", "post_info": {}}
        assert _tt_status(tt, token, publish_id)["status"] == "PROCESSING_UPLOAD"  # processing_polls=1
        assert _tt_status(tt, token, publish_id)["status"] == "SEND_TO_USER_INBOX"
        assert _tt_chunk(url, MP4, 600, 1035, 1036).status_code == 201 and len(tt.posts) == 1
        other = tt.issue_tokens("other")["access_token"]
        stranger = _tt_post(tt, "/v2/post/publish/status/fetch/", other, {"publish_id": publish_id})
        assert stranger.status_code == 400 and stranger.json()["error"]["code"] == "invalid_publish_id"
        unknown = requests.put(
            f"{tt.url}/upload/?upload_id=nope",
            data=b"x",
            headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-0/1"},
            timeout=5,
        )
        assert unknown.status_code == 404


def test_tiktok_direct_post_checks_privacy_and_reports_the_post_id() -> None:
    with TikTokFake(min_chunk_bytes=5000, processing_polls=0) as tt:
        token = tt.issue_tokens("acct")["access_token"]
        post_info = {"title": "Week 5", "privacy_level": "FOLLOWERS_ONLY", "disable_comment": False}
        payload = {"post_info": post_info, "source_info": _tt_source(1036, 1036, 1)}
        refused = _tt_post(tt, "/v2/post/publish/video/init/", token, payload)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_params"
        post_info["privacy_level"] = "SELF_ONLY"
        init = _tt_post(tt, "/v2/post/publish/video/init/", token, payload).json()["data"]
        assert init["publish_id"].startswith("v_pub_file~v2.")
        assert (
            _tt_chunk(init["upload_url"], MP4, 0, 1035, 1036).status_code == 201
        )  # under the minimum: whole
        status = _tt_status(tt, token, init["publish_id"])
        assert status["status"] == "PUBLISH_COMPLETE" and isinstance(
            status["publicaly_available_post_id"][0], int
        )
        assert tt.posts[0]["metadata"] == {"mode": "direct", "post_info": post_info}


def test_tiktok_lost_final_chunk_response_still_posts_once_and_a_non_video_fails() -> None:
    with TikTokFake(min_chunk_bytes=5000, processing_polls=0) as tt:
        token = tt.issue_tokens("acct")["access_token"]
        init = _tt_post(
            tt, "/v2/post/publish/inbox/video/init/", token, {"source_info": _tt_source(1036, 1036, 1)}
        )
        url = init.json()["data"]["upload_url"]
        tt.inject("lost_response", method="PUT", path_contains="/upload/")
        with pytest.raises(requests.ConnectionError):
            _tt_chunk(url, MP4, 0, 1035, 1036)
        assert len(tt.posts) == 1
        status = _tt_status(tt, token, init.json()["data"]["publish_id"])
        assert (status["status"], status["uploaded_bytes"]) == ("SEND_TO_USER_INBOX", 1036)
        assert _tt_chunk(url, MP4, 0, 1035, 1036).status_code == 201 and len(tt.posts) == 1

        text = b"not a video" * 10
        init = _tt_post(
            tt, "/v2/post/publish/inbox/video/init/", token, {"source_info": _tt_source(110, 110, 1)}
        )
        assert _tt_chunk(init.json()["data"]["upload_url"], text, 0, 109, 110).status_code == 201
        failed = _tt_status(tt, token, init.json()["data"]["publish_id"])
        assert (failed["status"], failed["fail_reason"]) == ("FAILED", "file_format_check_failed")
        assert len(tt.posts) == 1
        with pytest.raises(ValueError, match="quota"):
            tt.inject("quota")  # YouTube's alone


# -- Instagram --------------------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server for tmp_path: the place Instagram fetches video_url from."""
    (tmp_path / "reel.mp4").write_bytes(MP4)
    (tmp_path / "notes.txt").write_bytes(b"hello world")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _ig(method: str, ig: InstagramFake, path: str, token: str, **params: Any) -> requests.Response:
    url = f"{ig.url}/v21.0/{path}"
    if method == "GET":
        return requests.get(url, params=params, headers=_bearer(token), timeout=5)
    return requests.post(url, data=params, headers=_bearer(token), timeout=5)


def _ig_settled(ig: InstagramFake, token: str, container_id: str) -> dict[str, Any]:
    """Poll the container as a client would until it leaves IN_PROGRESS."""
    for _ in range(200):
        body: dict[str, Any] = _ig("GET", ig, container_id, token, fields="status_code,status").json()
        if body["status_code"] != "IN_PROGRESS":
            return body
        time.sleep(0.01)
    raise AssertionError("the container never left IN_PROGRESS")


def _ig_create(ig: InstagramFake, token: str, account: str, video_url: str, caption: str = "c") -> str:
    created = _ig(
        "POST", ig, f"{account}/media", token, media_type="REELS", video_url=video_url, caption=caption
    )
    return str(created.json()["id"])


def test_instagram_reel_from_a_url_to_a_published_post(served: str) -> None:
    with InstagramFake(processing_polls=1) as ig:
        token = ig.issue_tokens("17841")["access_token"]
        limit = requests.get(
            f"{ig.url}/v21.0/17841/content_publishing_limit",
            params={"fields": "config,quota_usage", "access_token": token},  # the token as a query parameter
            timeout=5,
        )
        assert limit.json() == {
            "data": [{"quota_usage": 0, "config": {"quota_total": 50, "quota_duration": 86400}}]
        }
        created = _ig(
            "POST",
            ig,
            "17841/media",
            token,
            media_type="REELS",
            video_url=f"{served}/reel.mp4",
            caption="Week 5",
            share_to_feed="true",
        )
        container_id = created.json()["id"]
        early = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert early.status_code == 400
        assert (early.json()["error"]["code"], early.json()["error"]["error_subcode"]) == (9007, 2207027)
        first = _ig("GET", ig, container_id, token, fields="status_code,status").json()
        assert first["status_code"] == "IN_PROGRESS"  # processing_polls=1, fetched or not
        assert _ig_settled(ig, token, container_id)["status_code"] == "FINISHED"
        published = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert published.status_code == 200
        media_id = published.json()["id"]
        again = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert again.status_code == 400 and again.json()["error"]["code"] == 9007  # never twice
        assert _ig("GET", ig, container_id, token, fields="status_code").json()["status_code"] == "PUBLISHED"
        link = _ig("GET", ig, media_id, token, fields="permalink").json()
        assert link["id"] == media_id and link["permalink"].startswith("https://www.instagram.com/reel/")
        recent = _ig("GET", ig, "17841/media", token, fields="id,caption,timestamp").json()["data"]
        assert [(m["id"], m["caption"]) for m in recent] == [(media_id, "Week 5")] and recent[0]["timestamp"]
        assert len(ig.posts) == 1 and ig.posts[0]["sha256"] == hashlib.sha256(MP4).hexdigest()
        assert ig.posts[0]["metadata"] == {"caption": "Week 5", "share_to_feed": True}
        assert ig.quota_usage("17841") == 1
        stranger = _ig("GET", ig, "99999/media", token)
        assert stranger.status_code == 400 and stranger.json()["error"]["code"] == 100


def test_instagram_refuses_bad_media_unfinished_containers_and_spent_quota(
    tmp_path: Path, served: str
) -> None:
    with InstagramFake(quota_total=1, processing_polls=0) as ig:
        token = ig.issue_tokens("17841")["access_token"]
        video = _ig("POST", ig, "17841/media", token, media_type="VIDEO", video_url=f"{served}/reel.mp4")
        assert video.status_code == 400 and video.json()["error"]["code"] == 100
        not_mp4 = _ig_create(ig, token, "17841", f"{served}/notes.txt")
        assert _ig_settled(ig, token, not_mp4) == {
            "id": not_mp4,
            "status_code": "ERROR",
            "status": "ERROR: not an MP4",
        }
        missing = _ig_create(ig, token, "17841", (tmp_path / "missing.mp4").as_uri())
        assert _ig_settled(ig, token, missing)["status"] == "ERROR: could not fetch video"
        refused = _ig("POST", ig, "17841/media_publish", token, creation_id=not_mp4)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == 9007

        expiring = _ig_create(ig, token, "17841", (tmp_path / "reel.mp4").as_uri())  # file:// works too
        assert _ig_settled(ig, token, expiring)["status_code"] == "FINISHED"
        ig.expire_container(expiring)
        assert (
            _ig("POST", ig, "17841/media_publish", token, creation_id=expiring).json()["error"]["code"]
            == 9007
        )

        first, second = (
            _ig_create(ig, token, "17841", f"{served}/reel.mp4", caption=c) for c in ("one", "two")
        )
        for container_id in (first, second):
            _ig_settled(ig, token, container_id)
        assert _ig("POST", ig, "17841/media_publish", token, creation_id=first).status_code == 200
        spent = _ig("POST", ig, "17841/media_publish", token, creation_id=second)
        assert spent.status_code == 400
        assert (spent.json()["error"]["code"], spent.json()["error"]["error_subcode"]) == (9, 2207042)
        assert len(ig.posts) == 1


def test_instagram_tokens_expire_and_refresh_as_long_lived_tokens_do() -> None:
    with InstagramFake() as ig:
        live, doomed = ig.issue_tokens("17841")["access_token"], ig.issue_tokens("17841")["access_token"]
        invalid = _ig("GET", ig, "17841/media", "nope").json()["error"]
        assert (
            invalid["code"] == 190 and "error_subcode" not in invalid and invalid["type"] == "OAuthException"
        )
        ig.inject("expire_token", path_contains="/media")
        expired = _ig("GET", ig, "17841/media", doomed)
        assert expired.status_code == 400
        assert (expired.json()["error"]["code"], expired.json()["error"]["error_subcode"]) == (190, 463)
        refresh = f"{ig.url}/refresh_access_token"
        no_refresh = requests.get(
            refresh, params={"grant_type": "ig_refresh_token", "access_token": doomed}, timeout=5
        )
        assert no_refresh.status_code == 400 and no_refresh.json()["error"]["code"] == 190
        renewed = requests.get(
            refresh, params={"grant_type": "ig_refresh_token", "access_token": live}, timeout=5
        )
        assert renewed.status_code == 200 and renewed.json()["expires_in"] == 5184000
        assert renewed.json()["token_type"] == "bearer" and renewed.json()["access_token"] != live
        for token in (live, renewed.json()["access_token"]):  # the old token stays valid
            assert _ig("GET", ig, "17841/media", token).status_code == 200


def test_instagram_publish_faults_drop_lose_the_answer_or_fail(served: str) -> None:
    with InstagramFake(processing_polls=0) as ig:
        token = ig.issue_tokens("17841")["access_token"]
        container_id = _ig_create(ig, token, "17841", f"{served}/reel.mp4", caption="Week 5")
        _ig_settled(ig, token, container_id)
        ig.inject("503", path_contains="/media_publish")
        ig.inject("429", path_contains="/media_publish", retry_after=3)
        unavailable = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert unavailable.status_code == 503 and unavailable.json()["error"]["code"] == 2
        limited = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == 4
        assert limited.headers["Retry-After"] == "3"
        ig.inject("drop", method="POST", path_contains="/media_publish")
        with pytest.raises(requests.ConnectionError):
            _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert not ig.posts and ig.containers[container_id].status_code == "FINISHED"  # nothing happened
        ig.inject("lost_response", method="POST", path_contains="/media_publish")
        with pytest.raises(requests.ConnectionError):
            _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert len(ig.posts) == 1  # published; the client reconciles from the account's media
        recent = _ig("GET", ig, "17841/media", token, fields="id,caption,timestamp").json()["data"]
        assert recent[0]["id"] == ig.posts[0]["id"] and recent[0]["caption"] == "Week 5"
        assert _ig("POST", ig, "17841/media_publish", token, creation_id=container_id).status_code == 400
        assert [status for _, path, status in ig.requests_log if path.endswith("/media_publish")] == [
            503,
            429,
            0,
            0,
            400,
        ]


def test_instagram_publish_race_has_another_client_publish_first(served: str) -> None:
    with InstagramFake(processing_polls=0) as ig:
        token = ig.issue_tokens("17841")["access_token"]
        container_id = _ig_create(ig, token, "17841", f"{served}/reel.mp4", caption="Week 5")
        _ig_settled(ig, token, container_id)
        ig.inject("publish_race", method="POST", path_contains="/media_publish")
        second = _ig("POST", ig, "17841/media_publish", token, creation_id=container_id)
        assert second.status_code == 400 and second.json()["error"]["code"] == 9007
        assert len(ig.posts) == 1 and ig.containers[container_id].status_code == "PUBLISHED"


# -- shared machinery -------------------------------------------------------------------------------------
def test_garbage_answers_200_with_a_body_that_is_not_json_and_after_lets_requests_pass() -> None:
    with YouTubeFake() as yt:
        token = yt.issue_tokens("acct")["access_token"]
        yt.inject("garbage", method="GET", after=2)
        channels = f"{yt.url}/youtube/v3/channels?part=id&mine=true"
        answers = [requests.get(channels, headers=_bearer(token), timeout=5) for _ in range(4)]
        assert [a.headers["Content-Type"].split(";")[0] for a in answers] == [
            "application/json",
            "application/json",
            "text/html",
            "application/json",
        ]
        assert answers[2].status_code == 200 and not answers[2].text.startswith("{")


def test_no_request_is_logged_and_stop_cuts_kept_alive_connections(capfd: pytest.CaptureFixture[str]) -> None:
    ig = InstagramFake().start()
    token = ig.issue_tokens("17841")["access_token"]
    conn = http.client.HTTPConnection("127.0.0.1", int(ig.url.rpartition(":")[2]), timeout=5)
    conn.request("GET", f"/v21.0/17841/media?access_token={token}")
    assert conn.getresponse().read()
    ig.stop()
    assert conn.sock is not None and conn.sock.recv(1) == b""  # closed by the fake, not left hanging
    conn.close()
    out, err = capfd.readouterr()
    assert token not in out + err and "GET" not in err
