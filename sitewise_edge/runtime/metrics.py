"""Metrics at the edge: every metric is computed when its window closes, and again when late data
touches a closed window. The runtime owns the schedule; ``asset_models.metrics`` the computation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asset_models.metrics import MetricGroup, MetricPlan
from asset_models.metrics import compute as compute_metric
from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.files import read_json, write_json_atomic
from storage.query import Reader

if TYPE_CHECKING:
    from sitewise_edge.runtime.gateway import Gateway


class MetricRunner:
    """Computes every metric when its window closes, and again for windows that late data touched.

    The last closed window of each metric is kept in ``data_dir/metrics.json``, so a restart
    catches up on the windows that closed meanwhile (up to a week back).
    """

    GRACE_NS = 2 * NS_PER_S  # wait this long after a window ends for values still on their way
    LATE_LIMIT_NS = 7 * NS_PER_DAY  # SiteWise recomputes windows up to 7 days back
    MAX_WINDOWS = 10_080  # per metric and pass: a week of minutes

    def __init__(self, gateway: Gateway, plan: MetricPlan) -> None:
        self.gateway = gateway
        self.plan = plan
        self.state_path = gateway.config.gateway.data_dir / "metrics.json"
        self.closed: dict[str, int] = {}
        self.dirty: dict[str, set[int]] = {}
        self.computed = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def note(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Mark the closed windows that values of ``batch`` fall in for recomputation (late data)."""
        if not self.plan.groups or not self.closed:
            return
        streams = batch.column("stream").cast(pa.string())
        inputs = pa.array(sorted(self.plan.streams), pa.string())
        mask = pc.and_(pc.is_in(streams, inputs), pc.equal(batch.column("quality"), 0))
        if not pc.any(mask).as_py():
            return
        rows = batch.filter(mask)
        row_streams = rows.column("stream").cast(pa.string()).to_numpy(zero_copy_only=False)
        times = rows.column("time").cast(pa.int64()).to_numpy()
        horizon = self.gateway.clock.time_ns() - self.LATE_LIMIT_NS
        for group in self.plan.groups:
            closed = self.closed.get(group.key)
            if closed is None:
                continue
            mine = np.isin(row_streams, [s for ss in group.inputs.values() for x in ss for s in x])
            late = times[mine & (times <= closed) & (times > horizon)]
            if len(late):
                ends = group.anchor_ns + -((-(late - group.anchor_ns)) // group.interval_ns) * group.interval_ns
                self.dirty.setdefault(group.key, set()).update(int(e) for e in np.unique(ends))
                self._wake.set()

    def replan(self, plan: MetricPlan) -> None:
        """Compute ``plan`` from now on (the models changed through the API). A metric new to the runner
        begins with the window open now, so the window open at its creation gets its value when it closes."""
        now = self.gateway.clock.time_ns()
        for group in plan.groups:
            self.closed.setdefault(group.key, group.window_end_of(now) - group.interval_ns)
        self.plan = plan
        self._wake.set()

    async def run(self) -> None:
        """Runs for as long as the gateway, with no metric too: one created through the API wakes it."""
        loaded = await asyncio.to_thread(self._load)
        self.closed = {**self.closed, **loaded}
        while True:
            await self.tick()
            self._wake.clear()
            if not self.dirty:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._until_next(self.gateway.clock.time_ns()))
                except TimeoutError:
                    pass

    async def tick(self) -> None:
        """Compute every window that has closed, and every window late data touched."""
        async with self._lock:
            now = self.gateway.clock.time_ns()
            for group in self.plan.groups:
                await self._close_windows(group, now)
            state = {"closed": self.closed, "dirty": {k: sorted(v) for k, v in self.dirty.items()}}
            await asyncio.to_thread(write_json_atomic, self.state_path, state)

    async def _close_windows(self, group: MetricGroup, now: int) -> None:
        last = self.closed.get(group.key)
        if last is None:  # first start: begin with the window now open
            last = group.window_end_of(now) - group.interval_ns
        ends = group.window_ends(max(last, now - self.LATE_LIMIT_NS), now - self.GRACE_NS)[-self.MAX_WINDOWS:]
        redo = sorted(self.dirty.pop(group.key, set()))
        todo = np.unique(np.concatenate([ends, np.array(redo, dtype=np.int64)]))
        # closed before reading: a value accepted while the windows are computed marks them for another pass
        self.closed[group.key] = int(ends[-1]) if len(ends) else self.closed.get(group.key, last)
        # contiguous runs of windows apart: one late value a week back must not load the whole week
        breaks = np.flatnonzero(np.diff(todo) != group.interval_ns) + 1
        for run in np.split(todo, breaks) if len(todo) else []:
            out = await asyncio.to_thread(self._compute, group, run)
            if out is not None:
                self.note(out)  # metrics over this metric: their closed windows are recomputed too
                self.computed += out.num_rows
                for part in out.to_batches():
                    await self.gateway.store.append(part)
                await self.gateway.transform(out)  # transforms that take this metric as input

    def _until_next(self, now: int) -> float | None:
        """Seconds until the next window closes (None: no metric, wait to be woken)."""
        if not self.plan.groups:
            return None
        nxt = min(g.window_ends(now - self.GRACE_NS, now - self.GRACE_NS + g.interval_ns)[0]
                  for g in self.plan.groups)
        return max(0.05, (nxt + self.GRACE_NS - now) / NS_PER_S)

    def _compute(self, group: MetricGroup, ends: np.ndarray) -> pa.Table | None:
        with self.gateway.store.reader() as reader:
            return compute_windows(reader, group, ends)

    def _load(self) -> dict[str, int]:
        """The last closed window per metric, and the windows late data marked before a stop."""
        if not self.state_path.exists():
            return {}
        state = read_json(self.state_path)
        for key, ends in state.get("dirty", {}).items():
            self.dirty.setdefault(key, set()).update(int(e) for e in ends)
        return {k: int(v) for k, v in state.get("closed", {}).items()}


def compute_windows(reader: Reader, group: MetricGroup, ends: np.ndarray) -> pa.Table | None:
    """The values of ``group``'s metrics for the windows ending at ``ends``, from the GOOD values in
    ``reader``: each window's points, the latest point before it, and each stream's first point."""

    def earliest(streams: Sequence[str], _at: int = 0) -> pa.Table:
        return reader.edge(streams, None, first=True)

    return compute_metric(group, ends, reader.points, lambda streams, at: reader.edge(streams, at, first=False),
                          earliest)
