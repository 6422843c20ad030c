"""A time range reads only the Parquet files of the UTC days it meets (storage/query.py), with the same answers.

Values sit on both sides of midnights (23:59:59.6 is stored in its day's folder though its nearest whole second
is the next day's), in several files per day, with late rewrites compacted into an older day later on; every
window around the midnights must answer history, points and aggregates exactly as the brute-force model does.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pyarrow as pa

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage.query import Reader
from storage.store import Store

DAY0 = 19_500 * NS_PER_DAY
OFFSETS = (-NS_PER_S * 61, -400_000_000, -1, 0, 1, 400_000_000, NS_PER_S * 59)  # around a midnight


def test_windows_around_midnights_answer_as_the_model(tmp_path: Path) -> None:
    async def run() -> None:
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
        await store.open()
        model: dict[tuple[str, int], float] = {}

        async def put(rows: list[tuple[str, int, float]], compact: bool = True) -> None:
            await store.append(from_columns([r[0] for r in rows], [r[1] for r in rows],
                                            double=[r[2] for r in rows]))
            model.update({(s, t): v for s, t, v in rows})
            if compact:
                await store.compact()

        try:
            for day in range(1, 4):  # values around three midnights, a file per midnight
                midnight = DAY0 + day * NS_PER_DAY
                await put([(s, midnight + o, float(day * 100 + k)) for k, o in enumerate(OFFSETS)
                           for s in ("/a", "/b")])
            # late rewrites of the first midnight's values, compacted later into the older day folders
            await put([("/a", DAY0 + NS_PER_DAY + o, -1.0 - k) for k, o in enumerate(OFFSETS)])
            await put([("/b", DAY0 + 2 * NS_PER_DAY - 1, 7.5)], compact=False)  # one resident row
            assert len({p.parent.name for p in store.snapshot().files}) >= 4
            edges = sorted({DAY0 + d * NS_PER_DAY + o for d in range(1, 4) for o in (-400_000_000, -1, 0, NS_PER_S)})
            with store.reader() as r:
                for k, (lo, hi) in enumerate(itertools.combinations(edges, 2)):
                    for stream in ("/a", "/b")[k % 2:k % 2 + 1]:
                        want = sorted((t, v) for (s, t), v in model.items() if s == stream and lo < t <= hi)
                        history = r.history(stream, lo, hi)
                        assert _pairs(history) == want, (stream, lo - DAY0, hi - DAY0)
                        points = r.points([stream], lo, hi)
                        assert _pairs(points) == want
                        agg = r.aggregates([stream], lo, hi, 60 * NS_PER_S, limit=10_000)
                        assert sum(agg.column("count").to_pylist()) == len(want)
                        assert sum(agg.column("sum").to_pylist()) == sum(v for _, v in want)
            assert store._duck is not None
            with Reader(store._duck.cursor(), store.snapshot()) as r:  # a second reader over the same files
                assert _pairs(r.history("/a", None, None)) == sorted((t, v) for (s, t), v in model.items() if s == "/a")
        finally:
            await store.close()

    asyncio.run(run())


def _pairs(table: pa.Table) -> list[tuple[int, float]]:
    return list(zip(table.column("time").cast(pa.int64()).to_pylist(), table.column("double").to_pylist(),
                    strict=True))
