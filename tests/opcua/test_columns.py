"""The columnar conversion of a publish response (connectors/opcua/columns.py) gives, row for row, what
the per-value ``convert`` gives: every built-in type, statuses, timestamps, forced types, several
aliases on one node, notifications for no node. (Through a real server: test_types.py, both modes.)"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from asyncua import ua

from connectors.opcua.columns import Targets, to_batch
from connectors.opcua.convert import convert
from sitewise_edge.samples import VALUE_COLUMNS, Quality, ValueType
from tests.opcua.test_types import CASES

VT = ua.VariantType
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=1)
RECEIVED = 1_800_000_000_000_000_000
GOOD = ua.StatusCode(ua.StatusCodes.Good)
UNCERTAIN = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
BAD = ua.StatusCode(ua.StatusCodes.BadCommunicationError)


def rows(batch: Any) -> list[tuple[Any, ...]]:
    cols = [batch.column("stream").to_pylist(), batch.column("time").cast("int64").to_pylist()]
    cols += [batch.column(c).to_pylist() for c in (*VALUE_COLUMNS, "quality")]
    return [tuple(r) for r in zip(*cols, strict=True)]


def expected(alias: str, dv: ua.DataValue, forced: ValueType | None, timestamp: str) -> tuple[Any, ...]:
    tqv = convert(dv, forced, timestamp, RECEIVED)
    values: list[Any] = [None] * 4
    if tqv.value is not None and tqv.type is not None:
        values[VALUE_COLUMNS.index(tqv.type.column)] = tqv.value
    return (alias, tqv.time_ns, *values, int(tqv.quality))


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b, strict=True))


def data_values() -> list[ua.DataValue]:
    """Every type of test_types, then numbers with other statuses and timestamps."""
    dvs = [ua.DataValue(variant, SourceTimestamp=T0, ServerTimestamp=T1) for variant, *_ in CASES.values()]
    dvs += [
        ua.DataValue(ua.Variant(1.5, VT.Double), StatusCode=UNCERTAIN, SourceTimestamp=T0),
        ua.DataValue(ua.Variant(2.5, VT.Double), StatusCode=BAD, SourceTimestamp=T0),
        ua.DataValue(ua.Variant(3, VT.Int32), ServerTimestamp=T1),  # no source time: the server's
        ua.DataValue(ua.Variant(4, VT.Int32)),  # no time at all: the receive time
        ua.DataValue(ua.Variant(5.0, VT.Float), SourceTimestamp=T0, SourcePicoseconds=ua.UInt16(5000)),
        ua.DataValue(ua.Variant(False, VT.Boolean), SourceTimestamp=dt.datetime(1601, 1, 1, tzinfo=dt.UTC)),
        ua.DataValue(ua.Variant(7, VT.UInt64), StatusCode=GOOD, SourceTimestamp=T0),
        ua.DataValue(ua.Variant(), SourceTimestamp=T0),  # Null
    ]
    return dvs


@pytest.mark.parametrize("timestamp", ["source", "server"])
@pytest.mark.parametrize("forced", [None, ValueType.DOUBLE, ValueType.INTEGER, ValueType.STRING, ValueType.BOOLEAN],
                         ids=lambda f: f"forced={f}")
def test_rows_equal_the_per_value_conversion(forced: ValueType | None, timestamp: str) -> None:
    dvs = data_values()
    targets = Targets.build([[(f"/t/{i}", forced)] for i in range(len(dvs))])
    order = np.arange(len(dvs))[::-1]  # arrival order is kept, whatever the slots
    done = to_batch([dvs[i] for i in order], order, targets, timestamp, RECEIVED)
    want = [expected(f"/t/{i}", dvs[i], forced, timestamp) for i in order]
    got = rows(done.batch)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert same(g, w), (g, w)
    bad = {f"/t/{i}" for i in order if convert(dvs[i], forced, timestamp, RECEIVED).error is not None}
    assert {targets.aliases[t].as_py() for t, _ in done.errors} == bad
    assert done.dropped == 0


def test_numbers_take_the_columnar_path_with_their_quality() -> None:
    dvs = [ua.DataValue(ua.Variant(v, VT.Double), SourceTimestamp=T0) for v in (1.0, math.nan, -math.inf)]
    done = to_batch(dvs, np.arange(3), Targets.build([[("/a", None)], [("/b", None)], [("/c", None)]]), "source",
                    RECEIVED)
    assert done.batch.column("quality").to_pylist() == [Quality.GOOD, Quality.UNCERTAIN, Quality.UNCERTAIN]
    assert done.errors == []


def test_one_node_feeds_several_aliases() -> None:
    targets = Targets.build([[("/a", None), ("/a_text", ValueType.STRING)], [("/b", None)]])
    dvs = [ua.DataValue(ua.Variant(v, VT.Int32), SourceTimestamp=T0) for v in (1, 2, 3)]
    done = to_batch(dvs, np.array([0, 1, 0]), targets, "source", RECEIVED)
    assert [(r[0], r[3], r[4]) for r in rows(done.batch)] == [
        ("/a", 1, None), ("/a_text", None, "1"), ("/b", 2, None), ("/a", 3, None), ("/a_text", None, "3")]


def test_notifications_for_no_alias_are_dropped_and_counted() -> None:
    targets = Targets.build([[("/a", None)], []])
    dvs = [ua.DataValue(ua.Variant(float(v), VT.Double), SourceTimestamp=T0) for v in range(4)]
    done = to_batch(dvs, np.array([0, 1, 7, 0]), targets, "source", RECEIVED)
    assert done.dropped == 2
    assert done.batch.column("double").to_pylist() == [0.0, 3.0]
    assert done.batch.column("stream").to_pylist() == ["/a", "/a"]


def test_an_empty_response_is_an_empty_batch() -> None:
    done = to_batch([], np.array([], np.int64), Targets.build([[("/a", None)]]), "source", RECEIVED)
    assert done.batch.num_rows == 0
