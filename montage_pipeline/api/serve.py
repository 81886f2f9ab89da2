"""`montage api`: the read API on uvicorn, configured from the environment like the pipeline."""

from __future__ import annotations

import uvicorn

from montage_pipeline.api.app import create_app
from montage_pipeline.profiles import Profile
from montage_pipeline.publishing.exports import export_url
from montage_pipeline.settings import Settings
from montage_pipeline.storage.media_store import LocalMediaStore, MediaStore, S3MediaStore


def media_store(profile: Profile) -> MediaStore:
    """The profile's media store, on a client of the API's own (the pipeline's comes from its resource)."""
    if profile.s3 is not None:
        s3 = profile.s3
        return S3MediaStore.connect(s3.bucket, s3.prefix, s3.endpoint_url, s3.region_name)
    assert profile.media_root is not None
    return LocalMediaStore(profile.media_root)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the read API with `settings` (the CLI's `load_settings()`)."""
    profile = settings.profile
    store = media_store(profile)
    # The row holds object keys; each answer presigns them (or uses the public CDN base URL when set).
    public_base_url, expires_s = settings.public_base_url, settings.api.url_expires_s
    app = create_app(
        profile.database_url_value(),
        admin_token=settings.api.admin_token.value or None,
        dagster_graphql_url=settings.api.dagster_graphql_url,
        code_location=settings.api.code_location,
        media_urls=lambda key: export_url(store, key, expires_s, public_base_url),
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
