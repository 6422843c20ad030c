"""Metrics over windows: aggregation, temporal functions, statetime (§6.6), hierarchy pooling, OEE (§6.9)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from asset_models.expressions import Column, Series, VarInfo, compile_expression

from .helpers import NO, plain

S = 10**9
MIN = 60 * S
T0 = 1_700_000_000 * S - (1_700_000_000 * S) % (60 * MIN)  # an hour boundary


def series(points: list[tuple[int, Any]], ends: list[int], interval: int) -> Series:
    """Points (ns, value) cut into windows (end - interval, end], as the runtime builds them from the store."""
    points = sorted(points, key=lambda p: p[0])
    values: list[Any] = []
    times: list[int] = []
    offsets = [0]
    prior: list[Any] = []
    prior_ok: list[bool] = []
    earliest: list[Any] = []
    earliest_ok: list[bool] = []
    for end in ends:
        start = end - interval
        inside = [p for p in points if start < p[0] <= end]
        values += [p[1] for p in inside]
        times += [p[0] for p in inside]
        offsets.append(len(values))
        before = [p for p in points if p[0] <= start]
        prior.append(before[-1][1] if before else 0.0)
        prior_ok.append(bool(before))
        earliest.append(before[0][1] if before else 0.0)
        earliest_ok.append(bool(before))
    return Series(values, offsets, times, Column(prior, prior_ok), Column(earliest, earliest_ok))


def run(text: str, inputs: dict[str, Any], ends: list[int], interval: int = MIN,
        variables: dict[str, VarInfo] | None = None) -> list[Any]:
    variables = variables or {name: VarInfo() for name in inputs}
    m = compile_expression(text, variables, "metric")
    r = m.evaluate_windows(inputs, ends, interval_ns=interval, clock=lambda: 0.0)
    return [plain(v) if ok else NO for v, ok in zip(r.values, r.valid, strict=True)]


def test_statetime_scenario() -> None:
    """Idle Time = statetime(Idle), 1-minute windows ending 2:00 ... 2:04 PM (reference §6.6)."""
    two_pm = T0 + 14 * 60 * MIN
    idle = [(two_pm, 0.0), (two_pm + 30 * S, 1.0), (two_pm + 75 * S, 1.0), (two_pm + 165 * S, 0.0),
            (two_pm + 240 * S, 0.0)]
    ends = [two_pm + k * MIN for k in range(5)]
    assert run("statetime(Idle)", {"Idle": series(idle, ends, MIN)}, ends) == [NO, 30.0, 60.0, 45.0, 0.0]


def test_statetime_carries_state_through_empty_windows_and_takes_an_expression() -> None:
    ends = [T0 + k * MIN for k in range(1, 4)]
    pts = [(T0 - 10 * S, 1.0), (T0 + MIN + 20 * S, 5.0)]  # on before the first window; nothing in window 1
    s = series(pts, ends, MIN)
    assert run("statetime(x)", {"x": s}, ends) == [60.0, 60.0, 60.0]
    assert run("statetime(x > 2)", {"x": s}, ends) == [0.0, 40.0, 60.0]
    assert run("statetime(x - 1)", {"x": s}, ends) == [0.0, 40.0, 60.0]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("avg(x)", [2.0, NO, 6.0], id="avg"),
    pytest.param("sum(x)", [6.0, NO, 6.0], id="sum"),
    pytest.param("min(x)", [1.0, NO, 6.0], id="min"),
    pytest.param("max(x)", [3.0, NO, 6.0], id="max"),
    pytest.param("count(x)", [3.0, 0.0, 1.0], id="count-zero-when-empty"),
    pytest.param("avg(x*(x-1))", [(0 + 2 + 6) / 3, NO, 30.0], id="nested-one-variable"),
    pytest.param("sum(x/2)/avg(y^2)", [3.0 / 4.0, NO, 3.0 / 4.0], id="two-aggregates"),
    pytest.param("sum(avg(x^2)/2)", [(14 / 3) / 2, NO, 18.0], id="multilevel"),
    pytest.param("sum(x/2, y*2)", [3.0 + 4.0, NO, 3.0 + 4.0], id="pooled-arguments"),
    pytest.param("count(x, y)", [4.0, 0.0, 2.0], id="count-pooled"),
    pytest.param("max(latest(x), latest(y))", [3.0, 3.0, 6.0], id="max-of-latest"),
    pytest.param("avg(x, 10)", [4.0, 10.0, 8.0], id="literal-is-one-point-per-window"),
    pytest.param("count(if(x > 1, x, none))", [2.0, 0.0, 1.0], id="count-filtered"),
    pytest.param("first(x)", [1.0, NO, 6.0], id="first"),
    pytest.param("last(x)", [3.0, NO, 6.0], id="last"),
    pytest.param("latest(x)", [3.0, 3.0, 6.0], id="latest-carries-prior"),
    pytest.param("latest(x * 9/5 + 32)", [37.4, 37.4, 42.8], id="latest-of-expression"),
    pytest.param("earliest(x)", [NO, 1.0, 1.0], id="earliest-before-window"),
    pytest.param("x", [3.0, NO, 6.0], id="bare-variable-is-last-in-window"),
    pytest.param("avg(x) - latest(y)", [0.0, NO, 4.0], id="window-values-combined"),
    pytest.param("avg(x - avg(x))", [0.0, NO, 0.0], id="point-minus-window-value"),
    pytest.param("timestamp() - now()", [(T0 + MIN) / S, (T0 + 2 * MIN) / S, (T0 + 3 * MIN) / S],
                 id="timestamp-is-window-end"),
])
def test_window_functions(text: str, expected: list[Any]) -> None:
    ends = [T0 + k * MIN for k in range(1, 4)]
    x = [(T0 + 10 * S, 1.0), (T0 + 20 * S, 2.0), (T0 + 30 * S, 3.0), (T0 + 2 * MIN + 5 * S, 6.0)]
    y = [(T0 + 40 * S, 2.0), (T0 + 2 * MIN + 50 * S, 2.0)]
    got = run(text, {"x": series(x, ends, MIN), "y": series(y, ends, MIN)}, ends)
    assert got == pytest.approx(expected) if all(v != NO for v in expected) else got == expected
    for g, e in zip(got, expected, strict=True):
        assert (g == NO) == (e == NO)
        if e != NO:
            assert g == pytest.approx(e)


def test_hierarchy_variable_pools_child_points() -> None:
    """avg(temperature) over three child assets: the window segments hold every child's points."""
    ends = [T0 + MIN, T0 + 2 * MIN]
    values = [[10.0, 20.0, 30.0], [40.0]]  # window 1: one point from each child; window 2: child 1 only
    flat = Series([v for w in values for v in w], [0, 3, 4])
    variables = {"temperature": VarInfo(hierarchy=True)}
    assert run("avg(temperature)", {"temperature": flat}, ends, variables=variables) == [20.0, 40.0]
    assert run("count(temperature)", {"temperature": flat}, ends, variables=variables) == [3.0, 1.0]


def test_attribute_and_metric_inputs_are_one_value_per_window() -> None:
    ends = [T0 + MIN, T0 + 2 * MIN]
    variables = {"run_time": VarInfo(metric=True), "down_time": VarInfo(metric=True),
                 "ideal": VarInfo(attribute=True)}
    inputs = {"run_time": [45.0, 0.0], "down_time": [15.0, 0.0], "ideal": [2.0, 2.0]}
    assert run("run_time / (run_time + down_time)", inputs, ends, variables=variables) == [0.75, NO]
    assert run("run_time * ideal", inputs, ends, variables=variables) == [90.0, 0.0]


def test_boiling_count() -> None:
    """is_boiling = gte(temp_c, 100) (a transform) feeds boiling_count = sum(is_boiling) (§6.8)."""
    ends = [T0 + MIN]
    is_boiling = compile_expression("gte(temp_c, 100)", {"temp_c": VarInfo()}).evaluate(
        {"temp_c": [99.0, 100.0, 101.0, 20.0]}).values
    s = Series(is_boiling, [0, 4])
    assert run("sum(is_boiling)", {"is_boiling": s}, ends) == [2.0]


def test_oee_model() -> None:
    """Reference §6.9, over two 1-minute windows, from the Equipment_State measurement up."""
    state = compile_expression("eq(Equipment_State, 1111)", {"Equipment_State": VarInfo("INTEGER")})
    times = [T0 - 5 * S, T0 + 15 * S, T0 + 45 * S, T0 + 70 * S]
    codes = [1111, 1024, 1111, 1020]
    running = state.evaluate({"Equipment_State": codes}).values
    ends = [T0 + MIN, T0 + 2 * MIN]
    run_time = run("statetime(Running)", {"Running": series(list(zip(times, running, strict=True)), ends, MIN)},
                   ends)
    assert run_time == [30.0, 10.0]
    good = series([(T0 + 10 * S, 50.0), (T0 + 50 * S, 40.0), (T0 + 65 * S, 10.0)], ends, MIN)
    bad = series([(T0 + 20 * S, 10.0)], ends, MIN)
    successes = run("sum(Good_Count)", {"Good_Count": good}, ends)
    failures = run("sum(Bad_Count)", {"Bad_Count": bad}, ends)
    assert successes == [90.0, 10.0]
    assert failures == [10.0, NO]  # no Bad_Count point in the second window: sum() gives no value
    quality = run("Successes / (Successes + Failures)",
                  {"Successes": successes, "Failures": Column([10.0, 0.0], [True, False])}, ends,
                  variables={"Successes": VarInfo(metric=True), "Failures": VarInfo(metric=True)})
    assert quality == [0.9, NO]


def test_productivity_monday() -> None:
    """if(timestamp().localtime('PST').wday().eq(1), avg(productivity), none): Monday in Los Angeles."""
    monday_noon_la = 1_611_000_000 * S  # 2021-01-18 12:00 PST is 20:00 UTC; 1_611_000_000 is 20:00 UTC
    ends = [monday_noon_la, monday_noon_la + 24 * 60 * MIN]
    p = series([(ends[0] - 10 * S, 4.0), (ends[1] - 10 * S, 5.0)], ends, 60 * MIN)
    text = "if(timestamp().localtime('PST').wday().eq(1), avg(productivity), none)"
    assert run(text, {"productivity": p}, ends, 60 * MIN) == [4.0, NO]


def test_window_inputs_are_checked() -> None:
    m = compile_expression("avg(x)", {"x": VarInfo()}, "metric")
    with pytest.raises(ValueError, match="offsets must be 3 non-decreasing integers starting at 0"):
        m.evaluate_windows({"x": Series([1.0], [0, 1])}, [1, 2], interval_ns=MIN)
    with pytest.raises(ValueError, match="missing variable 'x'"):
        m.evaluate_windows({}, [1], interval_ns=MIN)


def test_many_windows_vectorised() -> None:
    """10,000 windows of random sizes: sums and counts match a Python loop."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 5, 10_000)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    values = rng.normal(size=int(offsets[-1]))
    ends = np.arange(1, 10_001, dtype=np.int64) * MIN
    m = compile_expression("sum(x) + count(x) * 1000", {"x": VarInfo()}, "metric")
    r = m.evaluate_windows({"x": Series(values, offsets)}, ends, interval_ns=MIN)
    for i in range(0, 10_000, 97):
        seg = values[offsets[i]:offsets[i + 1]]
        assert r.valid[i] == (seg.size > 0)
        if seg.size:
            assert r.values[i] == pytest.approx(seg.sum() + 1000 * seg.size)
