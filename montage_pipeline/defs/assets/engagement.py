"""`post_engagement`: each posted week's views, likes and comments, read from the platforms once a day.

Run daily by `engagement_schedule` for the 30 days after a week is posted; every run stores the day's
counts per post (`post_engagement` table, a rerun of the day replaces its rows) and reports the same
numeric keys, so the asset's Plots tab draws the weeks side by side, with the seed's other metrics.
"""

from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from montage_pipeline.defs.assets.publish import NETWORK_RETRY
from montage_pipeline.defs.catalog import OWNERS, stage_tags, table_value
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.social import (
    InstagramResource,
    TikTokResource,
    TokenVault,
    YouTubeResource,
)
from montage_pipeline.highlights.engagement_prior import record_exposure
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import SocialPlatform
from montage_pipeline.platform.week_metrics import week_metrics
from montage_pipeline.publishing.engagement import PostMeasurement, measure_week
from montage_pipeline.publishing.stats import InstagramStats, StatsReader, TikTokStats, YouTubeStats
from montage_pipeline.weeks import week_row_key

ENGAGEMENT_VERSION = "1"
RENDER_ASSET = dg.AssetKey("landscape_render")
# The platform table the asset writes (one row per post and UTC day).
POST_ENGAGEMENT_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("social_post_id", "integer"),
        dg.TableColumn("platform", "string"),
        dg.TableColumn("remote_id", "string"),
        dg.TableColumn("week_start", "datetime"),
        dg.TableColumn("day", "date"),
        dg.TableColumn("views", "integer"),
        dg.TableColumn("likes", "integer"),
        dg.TableColumn("comments", "integer"),
        dg.TableColumn("error", "string"),
        dg.TableColumn("measured_at", "datetime"),
    ]
)


class PostEngagementConfig(dg.Config):
    day: str = ""  # the UTC day the counts are stored under (YYYY-MM-DD); empty: today
    attempts_per_batch: int = 4  # tries with backoff per platform call (a Retry-After header wins)
    backoff_base_s: float = 0.5


def _readers(
    youtube: YouTubeResource, tiktok: TikTokResource, instagram: InstagramResource
) -> dict[SocialPlatform, StatsReader]:
    readers: dict[SocialPlatform, StatsReader] = {}
    if (yt := youtube.client()) is not None:
        readers[SocialPlatform.YOUTUBE] = YouTubeStats(yt)
    if (tt := tiktok.client()) is not None:
        readers[SocialPlatform.TIKTOK] = TikTokStats(tt)
    if (ig := instagram.client()) is not None:
        readers[SocialPlatform.INSTAGRAM] = InstagramStats(ig)
    return readers


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="engagement",
    kinds={"youtube", "tiktok", "instagram", "postgres"},
    code_version=ENGAGEMENT_VERSION,
    owners=OWNERS,
    tags=stage_tags("engagement", "table"),
    metadata={"dagster/column_schema": dg.MetadataValue.table_schema(POST_ENGAGEMENT_COLUMNS)},
    deps=["social_posts"],
    retry_policy=NETWORK_RETRY,
    description="Views, likes and comments of the week's posts, read daily for 30 days after posting; "
    "the feedback the engagement prior gives the next weeks' selection.",
)
def post_engagement(
    context: dg.AssetExecutionContext,
    config: PostEngagementConfig,
    scored_highlights: list[EditSpan],
    platform_db: PlatformDatabase,
    token_vault: TokenVault,
    youtube: YouTubeResource,
    tiktok: TikTokResource,
    instagram: InstagramResource,
) -> dg.MaterializeResult:
    week = context.partition_key
    day = date.fromisoformat(config.day) if config.day else datetime.now(UTC).date()
    with platform_db.session() as session:
        record_exposure(session, week, scored_highlights)
    rows = measure_week(
        platform_db.sessionmaker,
        week_row_key(week),
        day,
        _readers(youtube, tiktok, instagram),
        token_vault.cipher,
        attempts=config.attempts_per_batch,
        backoff_base_s=config.backoff_base_s,
    )
    with platform_db.session() as session:
        seed_metrics = week_metrics(session, week, weekly_partitions.timezone or "UTC")
    render_s = _render_seconds(context, week)
    if render_s is not None:
        seed_metrics["render_seconds"] = render_s
    return dg.MaterializeResult(metadata={**_metadata(rows, day), **seed_metrics})


def _metadata(rows: list[PostMeasurement], day: date) -> dict[str, Any]:
    measured = [r for r in rows if r.error is None]
    out: dict[str, Any] = {
        "day": day.isoformat(),
        "dagster/row_count": len(rows),
        "posts_measured": len(measured),
        "posts_failed": len(rows) - len(measured),
        "views": sum(r.views or 0 for r in measured),
        "likes": sum(r.likes or 0 for r in measured),
        "comments": sum(r.comments or 0 for r in measured),
    }
    for platform in SocialPlatform:
        mine = [r for r in measured if r.platform == platform.value]
        out[f"views_{platform.value}"] = sum(r.views or 0 for r in mine)
        out[f"likes_{platform.value}"] = sum(r.likes or 0 for r in mine)
        out[f"comments_{platform.value}"] = sum(r.comments or 0 for r in mine)
    out["posts"] = table_value(
        (
            ("post", "integer"),
            ("platform", "string"),
            ("video", "string"),
            ("views", "integer"),
            ("likes", "integer"),
            ("comments", "integer"),
            ("error", "string"),
        ),
        [
            {
                "post": r.post_id,
                "platform": r.platform,
                "video": r.remote_id or "",
                "views": r.views or 0,
                "likes": r.likes or 0,
                "comments": r.comments or 0,
                "error": r.error or "",
            }
            for r in rows
        ],
    )
    return out


def _render_seconds(context: dg.AssetExecutionContext, week: str) -> float | None:
    """The week's render time, from its render's own materialization (the seed's "render time")."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RENDER_ASSET, asset_partitions=[week]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    value = materialization.metadata.get("render_seconds") if materialization else None
    return (
        float(value.value) if isinstance(value, dg.FloatMetadataValue) and value.value is not None else None
    )
