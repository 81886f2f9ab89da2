from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import create_engine, inspect, text

from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager, TableSchemaMismatchError
from montage_pipeline.defs.partitions import weekly_partitions


@dataclass(frozen=True, slots=True)
class Pick:
    name: str
    score: float
    at: datetime
    tags: tuple[str, ...]
    parts: tuple[float, float]
    note: str | None


ROWS_BY_WEEK = {
    "2025-01-27": [
        Pick("a", 0.5, datetime(2025, 1, 28, 12, tzinfo=UTC), ("x", "y"), (1.0, 2.5), None),
        Pick("b", 0.25, datetime(2025, 1, 29, tzinfo=UTC), (), (0.0, 0.0), "pipe | in text"),
    ],
    "2025-02-03": [Pick("c", 1.0, datetime(2025, 2, 4, tzinfo=UTC), ("z",), (3.0, 4.0), None)],
}
calls: list[str] = []


@dg.asset(partitions_def=weekly_partitions, io_manager_key="table_io_manager")
def picks(context: dg.AssetExecutionContext) -> list[Pick]:
    calls.append(context.partition_key)
    return ROWS_BY_WEEK[context.partition_key]


loaded: dict[str, list[Pick]] = {}


@dg.asset(partitions_def=weekly_partitions, io_manager_key="table_io_manager")
def pick_names(context: dg.AssetExecutionContext, picks: list[Pick]) -> list[Pick]:
    loaded[context.partition_key] = picks
    return picks


def _rows(url: str, table: str, week: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE partition_key = :k"), {"k": week}
            ).scalar_one()
    finally:
        engine.dispose()


def test_weeks_are_replaced_whole_and_load_back_typed(db_url: str) -> None:
    io_manager = TableIOManager(url=db_url)
    for week in ("2025-01-27", "2025-02-03", "2025-01-27"):  # the rerun of the first week replaces it
        result = dg.materialize(
            [picks, pick_names], partition_key=week, resources={"table_io_manager": io_manager}
        )
        assert result.success
    assert _rows(db_url, "montage_picks", "2025-01-27") == 2
    assert _rows(db_url, "montage_picks", "2025-02-03") == 1
    assert loaded["2025-01-27"] == ROWS_BY_WEEK["2025-01-27"]  # same values, same types, same order
    assert isinstance(loaded["2025-01-27"][0].tags, tuple)
    assert loaded["2025-01-27"][0].at.tzinfo is not None
    mats = result.asset_materializations_for_node("picks")
    assert mats[0].metadata["dagster/row_count"].value == 2
    preview = mats[0].metadata["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert [c.name for c in preview.schema.columns] == ["name", "score", "at", "note"]
    assert [r.data["note"] for r in preview.records] == [None, "pipe | in text"]
    columns = mats[0].metadata["dagster/column_schema"]
    assert isinstance(columns, dg.TableSchemaMetadataValue)
    assert [(c.name, c.type) for c in columns.schema.columns] == [
        ("partition_key", "text"),
        ("row_index", "integer"),
        ("name", "text"),
        ("score", "float"),
        ("at", "timestamp"),
        ("tags", "json"),
        ("parts", "json"),
        ("note", "text"),
    ]


def test_an_empty_week_clears_that_week_only(db_url: str) -> None:
    io_manager = TableIOManager(url=db_url)
    dg.materialize([picks], partition_key="2025-02-03", resources={"table_io_manager": io_manager})
    ROWS_BY_WEEK["2025-02-10"] = []
    try:
        dg.materialize([picks], partition_key="2025-02-10", resources={"table_io_manager": io_manager})
        ROWS_BY_WEEK["2025-02-03"], saved = [], ROWS_BY_WEEK["2025-02-03"]
        dg.materialize([picks], partition_key="2025-02-03", resources={"table_io_manager": io_manager})
        ROWS_BY_WEEK["2025-02-03"] = saved
    finally:
        ROWS_BY_WEEK.pop("2025-02-10")
    assert _rows(db_url, "montage_picks", "2025-02-03") == 0


def test_a_changed_row_layout_is_refused_with_advice(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE montage_picks (partition_key VARCHAR(64), row_index INTEGER, name TEXT)")
        )
    engine.dispose()
    with pytest.raises(TableSchemaMismatchError, match="montage db drop-table montage_picks"):
        dg.materialize(
            [picks], partition_key="2025-01-27", resources={"table_io_manager": TableIOManager(url=db_url)}
        )
    assert "montage_picks" in inspect(create_engine(db_url)).get_table_names()
