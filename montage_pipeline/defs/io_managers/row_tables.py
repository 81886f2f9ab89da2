"""Map typed rows (frozen dataclasses) to SQL tables and back.

Kept apart from the IO manager so the column mapping is testable without Dagster. Field types map to
portable SQL types (Postgres and SQLite); tuples, lists and dicts of plain values are stored as JSON and
come back as the annotated container type.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeEngine

from montage_pipeline.platform.models import UTCDateTime

PARTITION_COLUMN = "partition_key"
ORDER_COLUMN = "row_index"
UNPARTITIONED_KEY = "__all__"


class RowTypeError(TypeError):
    """A value the table IO manager cannot store (not a list of dataclass rows, or an unmappable field)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    python_type: Any
    nullable: bool
    container: type | None  # tuple/list/dict when stored as JSON


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
        raise RowTypeError(f"union {annotation!r} is not storable; use X | None")
    return annotation, False


def field_specs(row_type: type) -> list[FieldSpec]:
    if not dataclasses.is_dataclass(row_type):
        raise RowTypeError(f"{row_type!r} is not a dataclass row type")
    hints = typing.get_type_hints(row_type)
    specs = []
    for f in dataclasses.fields(row_type):
        base, nullable = _unwrap_optional(hints[f.name])
        origin = typing.get_origin(base) or base
        container = origin if origin in (tuple, list, dict) else None
        specs.append(FieldSpec(f.name, base, nullable, container))
    return specs


def _sql_type(spec: FieldSpec) -> TypeEngine[Any]:
    if spec.container is not None:
        return JSON()
    base = spec.python_type
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return String(64)
    if base is bool:
        return Boolean()
    if base is int:
        return BigInteger()
    if base is float:
        return Float()
    if base is str:
        return Text()
    if base is datetime:
        return UTCDateTime()
    raise RowTypeError(f"field {spec.name!r} of type {base!r} has no column mapping")


def table_for(row_type: type, table_name: str, metadata: MetaData | None = None) -> Table:
    """The table that stores `row_type` rows, one set per partition key, in insertion order."""
    columns: list[Column[Any]] = [
        Column(PARTITION_COLUMN, String(64), primary_key=True),
        Column(ORDER_COLUMN, Integer, primary_key=True),
    ]
    columns += [Column(s.name, _sql_type(s), nullable=s.nullable) for s in field_specs(row_type)]
    return Table(table_name, metadata or MetaData(), *columns)


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    return value


def row_to_record(row: Any, specs: list[FieldSpec]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for spec in specs:
        value = getattr(row, spec.name)
        if value is not None and spec.container is not None:
            value = _to_json(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        record[spec.name] = value
    return record


def _from_json(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        if args:
            return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is list and args:
        return [_from_json(args[0], v) for v in value]
    return value


def record_to_row(row_type: type, record: Any, specs: list[FieldSpec]) -> Any:
    values: dict[str, Any] = {}
    for spec in specs:
        value = record[spec.name]
        if value is not None:
            if spec.container is not None:
                value = _from_json(spec.python_type, value)
            elif isinstance(spec.python_type, type) and issubclass(spec.python_type, enum.Enum):
                value = spec.python_type(value)
        values[spec.name] = value
    return row_type(**values)


def column_type(spec: FieldSpec) -> str:
    """The column's type as a person reads it in the UI's column schema."""
    if spec.container is not None:
        return "json"
    base = spec.python_type
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "string"
    names = {bool: "boolean", int: "bigint", float: "float", str: "text", datetime: "timestamp"}
    if base in names:
        return names[base]
    raise RowTypeError(f"field {spec.name!r} of type {base!r} has no column mapping")


PreviewValue = str | int | float | bool | None


def preview_fields(specs: list[FieldSpec]) -> list[FieldSpec]:
    """The fields a preview shows: plain values, and reasons even when they are lists."""
    return [s for s in specs if s.container is None or s.name.endswith("reason")]


def preview_records(
    rows: list[Any], fields: list[FieldSpec], limit: int = 10, width: int = 40
) -> list[dict[str, PreviewValue]]:
    """The first rows' values of `fields`, as plain cells (long text cut to `width`)."""

    def cell(value: Any) -> PreviewValue:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return float(f"{value:.4g}")
        text = str(value.value if isinstance(value, enum.Enum) else value).replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    return [{f.name: cell(getattr(r, f.name)) for f in fields} for r in rows[:limit]]
