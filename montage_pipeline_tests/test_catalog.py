"""What the catalogue shows of every asset: owner, stage and kind tags, code version, table columns,
and the week's export's freshness policy."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy

from montage_pipeline.definitions import defs
from montage_pipeline.defs.io_managers.table_io_manager import column_schema
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.analysis import ANALYSIS_VERSION

STAGES = {
    "eligible_jobs": ("selection", "table"),
    "selected_clips": ("selection", "table"),
    "scene_segments": ("analysis", "table"),
    "scored_highlights": ("analysis", "table"),
    "short_highlights": ("analysis", "table"),
    "long_highlights": ("analysis", "table"),
    "landscape_render": ("render", "media"),
    "portrait_render": ("render", "media"),
    "short_portrait_render": ("render", "media"),
    "long_landscape_render": ("render", "media"),
    "soundtrack": ("audio", "media"),
    "mixed_audio": ("audio", "media"),
    "s3_exports": ("publish", "table"),
    "social_posts": ("publish", "table"),
    "post_engagement": ("engagement", "table"),
}


def test_every_asset_has_an_owner_a_stage_a_kind_and_a_code_version() -> None:
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(STAGES)
    for name, (stage, kind) in STAGES.items():
        node = graph.get(dg.AssetKey(name))
        assert node.owners == ["team:montage"], name
        assert (node.tags.get("stage"), node.tags.get("kind")) == (stage, kind), name
        assert node.code_version, name
        # Table assets show their columns before any run; media assets have none.
        assert ("dagster/column_schema" in node.metadata) == (kind == "table"), name
    assert graph.get(dg.AssetKey("scene_segments")).code_version == str(ANALYSIS_VERSION)
    columns = graph.get(dg.AssetKey("scored_highlights")).metadata["dagster/column_schema"]
    assert isinstance(columns, dg.TableSchemaMetadataValue)
    assert columns.schema == column_schema(EditSpan)
    assert [c.name for c in columns.schema.columns][:3] == ["partition_key", "row_index", "order"]


def test_the_weeks_export_is_fresh_for_eight_days() -> None:
    policy = defs.resolve_asset_graph().get(dg.AssetKey("s3_exports")).freshness_policy
    assert isinstance(policy, TimeWindowFreshnessPolicy)
    assert policy.fail_window.to_timedelta() == timedelta(days=8)
    assert policy.warn_window is not None and policy.warn_window.to_timedelta() < timedelta(days=8)
