"""stdev, TimeWeightedAvg and TimeWeightedStDev: worked examples, and a brute-force reference (hypothesis).

The reference samples the signal at the middle of every second of the window, straight from the definition
of locf (the last value at or before t) and linear (the straight line between the values either side of t).
With timestamps on whole seconds the midpoint rule is exact for both, so the reference shares no code and no
formula with the vectorised one: the average is the mean of the samples, StDev 'f' their sample variance
(every second an observation) and 'p' their population variance.
"""

from __future__ import annotations

import statistics
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asset_models.documents import build_catalog
from asset_models.expressions import ExpressionError, VarInfo, compile_expression
from asset_models.metrics import MetricPlan
from asset_models.registry import Registry
from sitewise_edge.samples import from_columns
from tests.asset_models.test_metrics_runtime import Memory, metric, pid

from .helpers import NO
from .test_metrics import MIN, T0, S, run, series

ENDS = [T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]


def test_worked_example_locf_and_linear() -> None:
    """Prior 10 at the window start, 20 at +15 s, 40 at +45 s (values in the first window only)."""
    x = series([(T0 - 5 * S, 10.0), (T0 + 15 * S, 20.0), (T0 + 45 * S, 40.0)], ENDS, MIN)
    # locf: 10 for 15 s, 20 for 30 s, 40 for 15 s; then 40 the whole of the next windows
    assert run("TimeWeightedAvg(x)", {"x": x}, ENDS) == [pytest.approx((150 + 600 + 600) / 60), 40.0, 40.0]
    assert run("TimeWeightedAvg(x, 'locf')", {"x": x}, ENDS) == run("TimeWeightedAvg(x)", {"x": x}, ENDS)
    # linear: 15·(10+20)/2 + 30·(20+40)/2 + 15·40
    assert run("timeweightedavg(x, 'linear')", {"x": x}, ENDS) == [pytest.approx((225 + 900 + 600) / 60), 40.0,
                                                                   40.0]
    mean = (150 + 600 + 600) / 60
    q = 15 * (10 - mean) ** 2 + 30 * (20 - mean) ** 2 + 15 * (40 - mean) ** 2
    assert run("TimeWeightedStDev(x)", {"x": x}, ENDS) == [pytest.approx((q / 59) ** 0.5), 0.0, 0.0]
    assert run("TimeWeightedStDev(x, 'p')", {"x": x}, ENDS) == [pytest.approx((q / 60) ** 0.5), 0.0, 0.0]


def test_without_a_prior_value_the_segments_start_at_the_first_point() -> None:
    x = series([(T0 + 30 * S, 2.0), (T0 + 50 * S, 4.0)], ENDS, MIN)
    got = run("TimeWeightedAvg(x)", {"x": x}, ENDS)
    assert got == [pytest.approx((20 * 2 + 10 * 4) / 30), 4.0, 4.0]
    assert run("TimeWeightedAvg(x)", {"x": series([], ENDS, MIN)}, ENDS) == [NO, NO, NO]
    at_end = series([(T0 + MIN, 7.0)], ENDS, MIN)  # a single point at the window's end carries no time
    assert run("TimeWeightedAvg(x)", {"x": at_end}, ENDS) == [NO, 7.0, 7.0]


def test_expressions_text_and_options() -> None:
    x = series([(T0 - 5 * S, 1.0), (T0 + 30 * S, 3.0)], ENDS, MIN)
    assert run("TimeWeightedAvg(x * 10)", {"x": x}, ENDS) == [20.0, 30.0, 30.0]
    assert run("x.TimeWeightedAvg('linear') - TimeWeightedAvg(x)", {"x": x}, ENDS) == [
        pytest.approx((30 * 2 + 30 * 3) / 60 - 2.0), 0.0, 0.0]
    words = series([(T0 + 30 * S, "on")], ENDS, MIN)
    assert run("TimeWeightedAvg(x)", {"x": words}, ENDS, variables={"x": VarInfo("STRING")}) == [NO, NO, NO]
    skipped = series([(T0 - 5 * S, 1.0), (T0 + 30 * S, -1.0)], ENDS, MIN)  # a point without a value is absent
    assert run("TimeWeightedAvg(if(x > 0, x, none))", {"x": skipped}, ENDS) == [1.0, NO, NO]


@pytest.mark.parametrize(("text", "column", "message"), [
    pytest.param("TimeWeightedAvg(x, 'cubic')", 20, "unknown interpolation 'cubic' for timeweightedavg(): use "
                 "'locf' or 'linear'", id="unknown-interpolation"),
    pytest.param("TimeWeightedStDev(x, 'q')", 22, "unknown algorithm 'q'", id="unknown-algorithm"),
    pytest.param("TimeWeightedAvg(x, x)", 20, "must be a string literal: 'locf' or 'linear'", id="not-a-literal"),
    pytest.param("TimeWeightedAvg(x, 'locf', 1)", 1, "takes 1 to 2 arguments (3 given)", id="arity"),
    pytest.param("TimeWeightedAvg(kids)", 17, "'kids' is a property of child assets", id="hierarchy"),
    pytest.param("stdev()", 1, "stdev() takes at least 1 argument (0 given)", id="stdev-arity"),
])
def test_bad_calls_are_refused_with_their_column(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        compile_expression(text, {"x": VarInfo(), "kids": VarInfo(hierarchy=True)}, "metric")
    assert e.value.position == column - 1


def test_time_weighted_in_a_transform_is_refused() -> None:
    with pytest.raises(ExpressionError, match="timeweightedavg\\(\\) is a metric function"):
        compile_expression("TimeWeightedAvg(x)", {"x": VarInfo()}, "transform")


def test_stdev_is_the_sample_standard_deviation_of_the_pooled_points() -> None:
    x = series([(T0 + 10 * S, 1.0), (T0 + 20 * S, 2.0), (T0 + 30 * S, 4.0), (T0 + MIN + 5 * S, 3.0)], ENDS, MIN)
    assert run("stdev(x)", {"x": x}, ENDS) == [pytest.approx(statistics.stdev([1, 2, 4])), NO, NO]
    assert run("stdev(x, 10)", {"x": x}, ENDS) == [pytest.approx(statistics.stdev([1, 2, 4, 10])),
                                                   pytest.approx(statistics.stdev([3, 10])), NO]
    kids = VarInfo(hierarchy=True)
    assert run("stdev(k)", {"k": series([(T0 + 1 * S, 5.0), (T0 + 2 * S, 5.0)], ENDS, MIN)}, ENDS,
               variables={"k": kids}) == [0.0, NO, NO]


# --- the brute-force reference --------------------------------------------------------------------------
WINDOW_S = 60
BASE_S = T0 // S - WINDOW_S  # points from one window before the first evaluated window


def _reference(points: list[tuple[int, float]], how: str) -> list[Any]:
    """Per window, sample the signal at the middle of every second and reduce the samples."""
    points = sorted(points)
    out: list[Any] = []
    for end in ENDS:
        end_s = end // S
        start_s = end_s - WINDOW_S
        samples = []
        for k in range(WINDOW_S):
            t = start_s + k + 0.5
            before = [p for p in points if p[0] <= t]
            after = [p for p in points if p[0] > t]
            if not before:
                continue
            a = before[-1]
            if how == "linear" and after and after[0][0] <= end_s:
                b = after[0]
                a_t = max(a[0], start_s)  # the prior value counts from the window start
                samples.append(a[1] + (b[1] - a[1]) * (t - a_t) / (b[0] - a_t))
            else:
                samples.append(a[1])
        if how in ("locf", "linear"):
            out.append(sum(samples) / len(samples) if samples else NO)
        elif how == "f":
            out.append(statistics.stdev(samples) if len(samples) > 1 else NO)
        else:
            out.append(statistics.pstdev(samples) if samples else NO)
    return out


_points = st.lists(st.tuples(st.integers(0, 4 * WINDOW_S - 1), st.integers(-50, 50).map(float)),
                   max_size=12, unique_by=lambda p: p[0])


@settings(max_examples=150, deadline=None)
@given(points=_points, how=st.sampled_from(["locf", "linear", "f", "p"]))
def test_time_weighted_functions_match_the_brute_force_reference(points: list[tuple[int, float]],
                                                                  how: str) -> None:
    fn = "TimeWeightedAvg" if how in ("locf", "linear") else "TimeWeightedStDev"
    ns = [((BASE_S + t) * S, v) for t, v in points]
    got = run(f"{fn}(x, '{how}')", {"x": series(ns, ENDS, MIN)}, ENDS)
    expected = _reference([(BASE_S + t, v) for t, v in points], how)
    assert [g == NO for g in got] == [e == NO for e in expected]
    for g, e in zip(got, expected, strict=True):
        if e != NO:
            assert g == pytest.approx(e, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(windows=st.lists(st.lists(st.floats(-1e6, 1e6), max_size=6), min_size=1, max_size=5))
def test_stdev_matches_statistics(windows: list[list[float]]) -> None:
    ends = [T0 + (i + 1) * MIN for i in range(len(windows))]
    pts = [(T0 + i * MIN + (j + 1) * S, v) for i, w in enumerate(windows) for j, v in enumerate(w)]
    got = run("stdev(x)", {"x": series(pts, ends, MIN)}, ends)
    for g, w in zip(got, windows, strict=True):
        if len(w) < 2:
            assert g == NO
        else:
            assert g == pytest.approx(statistics.stdev(w), rel=1e-9, abs=1e-6)


def test_the_metric_runtime_computes_time_weighted_metrics() -> None:
    """A model with TimeWeightedAvg/TimeWeightedStDev metrics loads (it was refused whole) and computes them
    from the store's rows: the prior value and the timestamps come from the runtime."""
    model = {"assetModelName": "Tank", "assetModelProperties": [
        {"id": pid("level"), "name": "Level", "dataType": "DOUBLE", "type": {"measurement": {}}},
        metric("Level TWA", "TimeWeightedAvg(l, 'linear')", {"l": "Level"}),
        metric("Level TWSD", "TimeWeightedStDev(l, 'p')", {"l": "Level"}),
        metric("Level SD", "stdev(l)", {"l": "Level"})]}
    tank = {"assetId": pid("tank"), "assetName": "T1", "assetModelId": "Tank",
            "assetProperties": [{"id": pid("level"), "alias": "/t1/level"}]}
    plan = MetricPlan.build(Registry(build_catalog([("tank.json", model), ("t1.json", tank)])))
    mem = Memory()
    mem.add(pa.table(from_columns(["/t1/level"] * 3, [T0 - 5 * S, T0 + 15 * S, T0 + 45 * S],
                                  double=[10.0, 20.0, 40.0])))
    got = {}
    for name in ("Level TWA", "Level TWSD", "Level SD"):
        group = next(g for g in plan.groups if g.prop.name == name)
        got[name] = mem.run(group, group.window_ends(T0, T0 + MIN)).get((group.outputs[0], T0 + MIN))
    mean = (150 + 600 + 600) / 60
    q = 15 * (10 - mean) ** 2 + 30 * (20 - mean) ** 2 + 15 * (40 - mean) ** 2
    assert got == {"Level TWA": pytest.approx(28.75), "Level TWSD": pytest.approx((q / 60) ** 0.5),
                   "Level SD": pytest.approx(statistics.stdev([20.0, 40.0]))}
