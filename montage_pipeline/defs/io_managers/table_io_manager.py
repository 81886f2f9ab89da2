"""A partition-aware IO manager that keeps list-of-row assets in SQL tables (Postgres or SQLite).

One table per asset. Materializing a week replaces that week's rows in one transaction
(delete-then-insert), so reruns and backfills are idempotent and readers never see half a week.
Loading a week returns the same typed rows, in the order they were written.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine, MetaData, Table, delete, insert, inspect, select

from montage_pipeline.defs.io_managers.row_tables import (
    ORDER_COLUMN,
    PARTITION_COLUMN,
    UNPARTITIONED_KEY,
    FieldSpec,
    RowTypeError,
    column_type,
    field_specs,
    preview_fields,
    preview_records,
    record_to_row,
    row_to_record,
    table_for,
)
from montage_pipeline.platform.engine import make_engine


class TableSchemaMismatchError(RuntimeError):
    """The stored table was made for another row layout."""


def column_schema(row_type: type) -> dg.TableSchema:
    """The columns of the table a row type is stored in (`dagster/column_schema` of its asset)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(PARTITION_COLUMN, "text", "the week", dg.TableColumnConstraints(nullable=False)),
            dg.TableColumn(ORDER_COLUMN, "integer", "the row's position in the week's list"),
            *(
                dg.TableColumn(
                    s.name, column_type(s), constraints=dg.TableColumnConstraints(nullable=s.nullable)
                )
                for s in field_specs(row_type)
            ),
        ]
    )


def preview_table(rows: list[Any], specs: list[FieldSpec], limit: int = 10) -> dg.TableMetadataValue:
    """The week's first rows as a table in the UI (`dagster/row_count` says how many there are)."""
    fields = preview_fields(specs)
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, column_type(f)) for f in fields])
    return dg.MetadataValue.table([dg.TableRecord(r) for r in preview_records(rows, fields, limit)], schema)


def _row_type_from_annotation(annotation: Any) -> type | None:
    if typing.get_origin(annotation) in (list, Sequence, typing.Sequence):
        args = typing.get_args(annotation)
        if args and isinstance(args[0], type):
            return args[0]
    return None


def _declared_row_type(output: dg.OutputContext) -> type | None:
    """The row type an asset declares for its output (its return annotation, or `dagster_type`)."""
    try:
        op_def, name = output.op_def, output.name
    except dg.DagsterInvariantViolationError:
        return None
    return _row_type_from_annotation(op_def.output_def_named(name).dagster_type.typing_type)


def _input_row_type(context: dg.InputContext) -> type:
    """The rows to rebuild: in a run, the type the downstream input is annotated with; outside one
    (`Definitions.load_asset_value` from a script or notebook), where there is no input and so no name
    or annotation, the type the asset itself declares."""
    row_type = _row_type_from_annotation(context.dagster_type.typing_type)
    if row_type is None and not context.has_input_name and context.upstream_output is not None:
        row_type = _declared_row_type(context.upstream_output)
    if row_type is None:
        assert context.asset_key is not None
        what = f"input {context.name!r}" if context.has_input_name else context.asset_key.to_user_string()
        raise RowTypeError(f"{what} must be annotated as list[RowType] to be loaded from a table")
    return row_type


class TableIOManager(dg.ConfigurableIOManager):
    """Stores `list[Row]` asset values in `<table_prefix><asset>`; works on SQLite for the embedded profile.

    `url` comes from `EnvVar` in production so the password never reaches the UI.
    """

    url: str
    table_prefix: str = "montage_"

    _engine: Engine | None = PrivateAttr(default=None)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def table_name(self, asset_key: dg.AssetKey) -> str:
        return self.table_prefix + "__".join(asset_key.path)

    # -- writing --------------------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if not isinstance(obj, list):
            raise RowTypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; expected list"
            )
        key = self._output_partition_key(context)
        row_type = _row_type_from_annotation(context.dagster_type.typing_type) or (
            type(obj[0]) if obj else None
        )
        name = self.table_name(context.asset_key)
        with self.engine.begin() as conn:
            if row_type is None:
                # An empty week with no annotated row type: clear the week if the table exists.
                existing = self._existing_table(conn, name)
                if existing is not None:
                    conn.execute(delete(existing).where(existing.c[PARTITION_COLUMN] == key))
                context.add_output_metadata({"dagster/row_count": 0, "table": name})
                return
            specs = field_specs(row_type)
            table = table_for(row_type, name)
            self._ensure_table(conn, table)
            conn.execute(delete(table).where(table.c[PARTITION_COLUMN] == key))
            if obj:
                records = [
                    {PARTITION_COLUMN: key, ORDER_COLUMN: i, **row_to_record(row, specs)}
                    for i, row in enumerate(obj)
                ]
                conn.execute(insert(table), records)
        context.add_output_metadata(
            {
                "dagster/row_count": len(obj),
                "table": name,
                "preview": preview_table(obj, specs),
                "dagster/column_schema": column_schema(row_type),
            }
        )

    # -- reading --------------------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> list[Any]:
        assert context.asset_key is not None
        row_type = _input_row_type(context)
        name = self.table_name(context.asset_key)
        keys = self._input_partition_keys(context)
        specs = field_specs(row_type)
        with self.engine.connect() as conn:
            if self._existing_table(conn, name) is None:
                return []
            table = table_for(row_type, name)
            self._check_columns(conn, table)
            rows: list[Any] = []
            for key in keys:
                result = conn.execute(
                    select(table).where(table.c[PARTITION_COLUMN] == key).order_by(table.c[ORDER_COLUMN])
                )
                rows += [record_to_row(row_type, r._mapping, specs) for r in result]
        return rows

    # -- helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _output_partition_key(context: dg.OutputContext) -> str:
        if not context.has_asset_partitions:
            return UNPARTITIONED_KEY
        keys = context.asset_partition_keys
        if len(keys) != 1:
            raise RowTypeError("a table asset materializes one week per step; got " + ", ".join(keys))
        return keys[0]

    @staticmethod
    def _input_partition_keys(context: dg.InputContext) -> list[str]:
        return list(context.asset_partition_keys) if context.has_asset_partitions else [UNPARTITIONED_KEY]

    @staticmethod
    def _existing_table(conn: Any, name: str) -> Table | None:
        if not inspect(conn).has_table(name):
            return None
        return Table(name, MetaData(), autoload_with=conn)

    def _ensure_table(self, conn: Any, table: Table) -> None:
        if inspect(conn).has_table(table.name):
            self._check_columns(conn, table)
        else:
            table.create(conn)

    @staticmethod
    def _check_columns(conn: Any, table: Table) -> None:
        stored = {c["name"] for c in inspect(conn).get_columns(table.name)}
        wanted = {c.name for c in table.columns}
        if stored != wanted:
            raise TableSchemaMismatchError(
                f"table {table.name} holds another row layout (missing: {sorted(wanted - stored)}, "
                f"extra: {sorted(stored - wanted)}). It holds derived data only: drop it with "
                f"`montage db drop-table {table.name}` and rematerialize the weeks you need."
            )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
