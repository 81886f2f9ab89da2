"""What every asset tells the catalogue: who owns it, its stage, whether it is a table or media files,
and for tables the columns (`dagster/column_schema`, as the table IO manager lays them out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import dagster as dg

from montage_pipeline.defs.io_managers.table_io_manager import column_schema

OWNERS = ["team:montage"]


def stage_tags(
    stage: Literal["selection", "analysis", "render", "audio", "publish", "engagement"],
    kind: Literal["table", "media"],
) -> dict[str, str]:
    """Tags to filter the catalogue by: the pipeline stage, and what the asset stores."""
    return {"stage": stage, "kind": kind}


def table_metadata(row_type: type) -> dict[str, dg.TableSchemaMetadataValue]:
    """Definition metadata of a table asset: the columns of its table, shown before any run."""
    return {"dagster/column_schema": dg.MetadataValue.table_schema(column_schema(row_type))}


Cell = str | int | float | bool | None


def table_value(
    columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Cell]]
) -> dg.TableMetadataValue:
    """Rows of plain cells as a table on the asset's page: `columns` are (name, type), in order."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    return dg.MetadataValue.table([dg.TableRecord(dict(row)) for row in rows], schema)
