"""The sample batch: the columnar unit that travels between every stage.

A sample batch is a ``pyarrow.RecordBatch`` with :data:`SCHEMA`. Each row is one
timestamp-quality-value (TQV) of one data stream. Exactly one of the four value
columns is set in a row, or none for a null value (SiteWise's ``nullValue``,
allowed with BAD and UNCERTAIN quality only).

Conversions to and from Python objects happen once, at the edges (a connector
callback, a JSON request body); everything in between stays columnar.

    >>> b = SampleBuilder()
    >>> b.add("/plant/line1/temp", 1_700_000_000_000_000_000, 21.5)
    >>> batch = b.build()
    >>> to_sitewise_values(batch)[0]["value"]
    {'doubleValue': 21.5}
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeGuard

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.clock import NS_PER_S
from sitewise_edge.errors import InvalidValue


class Quality(enum.IntEnum):
    """SiteWise data quality, stored as int8."""

    GOOD = 0
    BAD = 1
    UNCERTAIN = 2


QUALITY_NAMES: tuple[str, ...] = tuple(q.name for q in Quality)


class ValueType(enum.StrEnum):
    """The four SiteWise value types (``Variant`` members) and their columns."""

    DOUBLE = "DOUBLE"
    INTEGER = "INTEGER"
    STRING = "STRING"
    BOOLEAN = "BOOLEAN"

    @property
    def column(self) -> str:
        return _COLUMN_OF[self]

    @property
    def variant_key(self) -> str:
        return _VARIANT_OF[self]


_COLUMN_OF = {
    ValueType.DOUBLE: "double",
    ValueType.INTEGER: "integer",
    ValueType.STRING: "string",
    ValueType.BOOLEAN: "boolean",
}
_VARIANT_OF = {
    ValueType.DOUBLE: "doubleValue",
    ValueType.INTEGER: "integerValue",
    ValueType.STRING: "stringValue",
    ValueType.BOOLEAN: "booleanValue",
}
VALUE_COLUMNS: tuple[str, ...] = ("double", "integer", "string", "boolean")
_NULL_VALUE_TYPE = {"double": "D", "integer": "I", "string": "S", "boolean": "B"}

TIME_TYPE = pa.timestamp("ns", tz="UTC")
STREAM_TYPE = pa.dictionary(pa.int32(), pa.string())

SCHEMA = pa.schema(
    [
        pa.field("stream", STREAM_TYPE, nullable=False),
        pa.field("time", TIME_TYPE, nullable=False),
        pa.field("double", pa.float64()),
        pa.field("integer", pa.int64()),
        pa.field("string", pa.string()),
        pa.field("boolean", pa.bool_()),
        pa.field("quality", pa.int8(), nullable=False),
    ]
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_STRING_BYTES = 1024
MAX_SECONDS = 9_223_372_035  # the last whole second int64 nanoseconds can hold (2262-04-11)


def empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=SCHEMA)


def from_columns(
    stream: Sequence[str] | pa.Array,
    time_ns: Sequence[int] | np.ndarray | pa.Array,
    *,
    double: Any = None,
    integer: Any = None,
    string: Any = None,
    boolean: Any = None,
    quality: Any = None,
) -> pa.RecordBatch:
    """Build a sample batch from whole columns (no per-value work in Python).

    Missing value columns are all-null; ``quality`` defaults to GOOD.
    """
    n = len(time_ns)
    stream_arr = stream if isinstance(stream, pa.Array) else pa.array(stream, pa.string())
    if not pa.types.is_dictionary(stream_arr.type):
        stream_arr = stream_arr.dictionary_encode()
    stream_arr = stream_arr.cast(STREAM_TYPE)
    time_arr = pa.array(np.asarray(time_ns, dtype=np.int64), pa.int64()).cast(TIME_TYPE) if not isinstance(
        time_ns, pa.Array
    ) else time_ns.cast(TIME_TYPE)

    def col(values: Any, typ: pa.DataType) -> pa.Array:
        if values is None:
            return pa.nulls(n, typ)
        return values.cast(typ) if isinstance(values, pa.Array) else pa.array(values, typ)

    if quality is None:
        q = pa.array(np.zeros(n, dtype=np.int8), pa.int8())
    else:
        q = col(quality, pa.int8())
    return pa.RecordBatch.from_arrays(
        [
            stream_arr,
            time_arr,
            col(double, pa.float64()),
            col(integer, pa.int64()),
            col(string, pa.string()),
            col(boolean, pa.bool_()),
            q,
        ],
        schema=SCHEMA,
    )


class SampleBuilder:
    """Collects values one at a time (in a connector callback) and builds one batch.

    The Python type of a value picks its column: ``bool`` -> boolean, ``int`` ->
    integer, ``float`` -> double, ``str`` -> string, ``None`` -> null value.
    ``as_type`` forces a column (the value is converted).
    """

    __slots__ = ("_cols", "_quality", "_stream", "_time")

    def __init__(self) -> None:
        self._stream: list[str] = []
        self._time: list[int] = []
        self._cols: dict[str, list[Any]] = {c: [] for c in VALUE_COLUMNS}
        self._quality: list[int] = []

    def __len__(self) -> int:
        return len(self._time)

    def add(
        self,
        stream: str,
        time_ns: int,
        value: Any,
        quality: Quality | int = Quality.GOOD,
        as_type: ValueType | None = None,
    ) -> None:
        column = as_type.column if as_type is not None else _column_for(value)
        self._stream.append(stream)
        self._time.append(int(time_ns))
        for name, values in self._cols.items():
            values.append(value if name == column else None)
        self._quality.append(int(quality))

    def build(self) -> pa.RecordBatch:
        batch = from_columns(self._stream, self._time, quality=self._quality, **self._cols)
        self.__init__()  # type: ignore[misc]
        return batch


def _column_for(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "integer"
    if isinstance(value, float | np.floating):
        return "double"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"unsupported value type {type(value).__name__}: {value!r}")


def value_types(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """Per row, the name of the set value column (or null for a null value)."""
    out = pa.nulls(batch.num_rows, pa.string())
    for name in VALUE_COLUMNS:
        out = pc.if_else(pc.is_valid(batch.column(name)), pa.scalar(name), out)
    return out


# --- SiteWise JSON ---------------------------------------------------------------


def time_to_sitewise(time_ns: int) -> dict[str, int]:
    seconds, nanos = divmod(int(time_ns), NS_PER_S)
    return {"timeInSeconds": seconds, "offsetInNanos": nanos}


def time_from_sitewise(ts: Mapping[str, Any]) -> int:
    return int(ts["timeInSeconds"]) * NS_PER_S + int(ts.get("offsetInNanos") or 0)


def to_sitewise_values(batch: pa.RecordBatch | pa.Table, *, json_safe: bool = True) -> list[dict[str, Any]]:
    """The rows of a batch as SiteWise ``AssetPropertyValue`` objects (an API edge).

    ``json_safe``: NaN and infinities as the strings SiteWise's JSON uses (for HTTP responses);
    otherwise as floats (for boto3, which validates types and serialises them itself).
    """
    times = batch.column("time").cast(pa.int64()).to_pylist()
    quality = batch.column("quality").to_pylist()
    cols = {name: batch.column(name).to_pylist() for name in VALUE_COLUMNS}
    out: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        out.append(
            {
                "value": _variant(cols, i, json_safe),
                "timestamp": time_to_sitewise(t),
                "quality": QUALITY_NAMES[quality[i]],
            }
        )
    return out


class Sample(NamedTuple):
    """One TQV as Python scalars: what a single-value answer needs without building a table
    (``storage.latest.LatestIndex.value``, GetAssetPropertyValue)."""

    time_ns: int
    column: str | None  # the set value column ("double", "integer", "string", "boolean"), None: a null value
    value: Any
    quality: int


def sample_to_sitewise(sample: Sample, null_type: str = "U") -> dict[str, Any]:
    """One :class:`Sample` as a SiteWise ``AssetPropertyValue`` (JSON-safe, as :func:`to_sitewise_values`);
    a null value as ``{"nullValue": {"valueType": null_type}}``."""
    if sample.column is None:
        value: dict[str, Any] = {"nullValue": {"valueType": null_type}}
    else:
        value = _variant_of(sample.column, sample.value, True)
    seconds, nanos = divmod(sample.time_ns, NS_PER_S)
    return {"value": value, "timestamp": {"timeInSeconds": seconds, "offsetInNanos": nanos},
            "quality": QUALITY_NAMES[sample.quality]}


_VARIANT_KEYS = (("double", "doubleValue"), ("integer", "integerValue"), ("string", "stringValue"),
                 ("boolean", "booleanValue"))


def _variant(cols: Mapping[str, list[Any]], i: int, json_safe: bool) -> dict[str, Any]:
    for name, _ in _VARIANT_KEYS:
        v = cols[name][i]
        if v is not None:
            return _variant_of(name, v, json_safe)
    return {"nullValue": {"valueType": "U"}}


def _variant_of(column: str, v: Any, json_safe: bool) -> dict[str, Any]:
    if json_safe and column == "double" and (math.isnan(v) or math.isinf(v)):
        return {"doubleValue": "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")}
    return {_VARIANT_KEY[column]: v}


_VARIANT_KEY = dict(_VARIANT_KEYS)


def parse_sitewise_value(tqv: Mapping[str, Any]) -> tuple[int, str | None, Any, int]:
    """One SiteWise ``AssetPropertyValue`` -> (time_ns, column, value, quality).

    Raises :class:`~sitewise_edge.errors.InvalidValue` for bad input.
    """
    if not isinstance(tqv, Mapping):
        raise InvalidValue("propertyValue must be an object")
    ts = tqv.get("timestamp")
    seconds = ts.get("timeInSeconds") if isinstance(ts, Mapping) else None
    nanos = (ts.get("offsetInNanos") or 0) if isinstance(ts, Mapping) else 0
    if not _is_int(seconds) or not _is_int(nanos):
        raise InvalidValue("timestamp must have an integer timeInSeconds and an integer offsetInNanos")
    if not 0 <= nanos <= 999_999_999:
        raise InvalidValue(f"offsetInNanos must be 0..999999999, got {nanos}")
    if not 1 <= seconds <= MAX_SECONDS:
        # SiteWise allows up to 9223372036854774; nanoseconds in int64 end in 2262
        raise InvalidValue(f"timeInSeconds must be 1..{MAX_SECONDS}, got {seconds}", "TimestampOutOfRangeException")
    quality_name = tqv.get("quality") or "GOOD"
    if quality_name not in QUALITY_NAMES:
        raise InvalidValue(
            f"unknown quality {quality_name!r}; expected GOOD, BAD or UNCERTAIN"
        )
    quality = Quality[quality_name]
    variant = tqv.get("value")
    if not isinstance(variant, Mapping) or len(variant) != 1:
        raise InvalidValue("value must have exactly one of doubleValue, "
                          "integerValue, stringValue, booleanValue, nullValue")
    (key, v), = variant.items()
    column: str | None
    if key == "doubleValue":
        column, v = "double", _as_double(v)
    elif key == "integerValue":
        if isinstance(v, bool) or not isinstance(v, int) or not INT32_MIN <= v <= INT32_MAX:
            raise InvalidValue(f"integerValue must be a 32-bit integer, got {v!r}")
        column = "integer"
    elif key == "stringValue":
        if not isinstance(v, str):
            raise InvalidValue(f"stringValue must be a string, got {v!r}")
        if len(v.encode()) > MAX_STRING_BYTES:
            raise InvalidValue("stringValue longer than 1024 bytes")
        column = "string"
    elif key == "booleanValue":
        if not isinstance(v, bool):
            raise InvalidValue(f"booleanValue must be true or false, got {v!r}")
        column = "boolean"
    elif key == "nullValue":
        if quality == Quality.GOOD:
            raise InvalidValue("nullValue is allowed only with BAD or UNCERTAIN quality")
        column, v = None, None
    else:
        raise InvalidValue(f"unknown value member {key!r}")
    return seconds * NS_PER_S + nanos, column, v, int(quality)


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_double(v: Any) -> float:
    if isinstance(v, bool):
        raise InvalidValue(f"doubleValue must be a number, got {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    raise InvalidValue(f"doubleValue must be a number, got {v!r}")


def from_sitewise_values(stream: str, tqvs: Iterable[Mapping[str, Any]]) -> pa.RecordBatch:
    """SiteWise TQVs of one stream -> a sample batch; raises InvalidValue on the first bad one."""
    builder = SampleBuilder()
    for tqv in tqvs:
        t, column, v, q = parse_sitewise_value(tqv)
        builder.add(stream, t, v, q, as_type=_TYPE_OF_COLUMN.get(column) if column else None)
    return builder.build()


_TYPE_OF_COLUMN = {v: k for k, v in _COLUMN_OF.items()}


def column_type(column: str) -> ValueType:
    return _TYPE_OF_COLUMN[column]


def null_value_type(column: str | None) -> str:
    return _NULL_VALUE_TYPE.get(column or "", "U")


def concat(batches: Sequence[pa.RecordBatch]) -> pa.Table:
    """Batches -> one table with a unified stream dictionary."""
    if not batches:
        return SCHEMA.empty_table()
    return pa.Table.from_batches(batches, schema=SCHEMA).unify_dictionaries()
