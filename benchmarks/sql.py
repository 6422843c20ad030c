"""ExecuteQuery: filter push-down against reading the whole view (what the sandbox did before).

    .venv/bin/python benchmarks/sql.py [--hours 24] [--repeat 3]

A real gateway (the example plant: 3 machines, 24 measurement streams) holds one value a second per
stream for ``--hours`` hours. Each query is timed twice through the same code path: with the push-down
(the time-series view holds only the rows the filters reach) and with it switched off (the whole view
loaded from the store, as before). Both must return the same rows; the table prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import api.sitewise.sql as sql_module  # noqa: E402
from api.sitewise.sql_dialect import Scan  # noqa: E402
from sitewise_edge.config import parse_config  # noqa: E402
from sitewise_edge.runtime.gateway import Gateway  # noqa: E402
from sitewise_edge.samples import NS_PER_S, from_columns  # noqa: E402


def queries(end: str) -> dict[str, str]:
    """The statements, their times relative to ``end`` (the last value's time) so both paths see the same."""
    return {
        "one property, last hour": (
            "SELECT r.event_timestamp, r.double_value FROM asset a, asset_property p, raw_time_series r "
            "WHERE a.asset_name = 'Press1' AND p.property_name = 'Temperature' "
            f"AND r.event_timestamp > DATE_SUB(HOUR, 1, TIMESTAMP '{end}') ORDER BY 1"),
        "one alias, 10 minutes": (
            "SELECT count(*), avg(double_value) FROM raw_time_series WHERE property_alias = "
            f"'/plant1/line1/press2/speed' AND event_timestamp BETWEEN DATE_SUB(MINUTE, 20, TIMESTAMP '{end}') "
            f"AND DATE_SUB(MINUTE, 10, TIMESTAMP '{end}')"),
        "one asset, whole store": (
            "SELECT p.property_name, count(*) FROM asset a, asset_property p, raw_time_series r "
            "WHERE a.asset_name = 'Oven1' AND p.property_type = 'measurement' GROUP BY p.property_name ORDER BY 1"),
        "no filter": "SELECT count(*) FROM raw_time_series",
    }


async def fill(gw: Gateway, hours: int) -> tuple[int, str]:
    streams = list(gw.registry.measurement_aliases())
    now = gw.clock.time_ns() // NS_PER_S * NS_PER_S
    seconds = hours * 3600
    rng = np.random.default_rng(1)
    for stream in streams:
        times = now - np.arange(seconds, 0, -1, dtype=np.int64) * NS_PER_S
        declared = gw.property_data_type(stream)
        kind = declared[0] if declared else "DOUBLE"
        if kind == "DOUBLE":
            batch = from_columns([stream] * seconds, times.tolist(), double=rng.normal(50, 5, seconds).tolist())
        elif kind == "INTEGER":
            batch = from_columns([stream] * seconds, times.tolist(), integer=rng.integers(0, 9, seconds).tolist())
        elif kind == "BOOLEAN":
            batch = from_columns([stream] * seconds, times.tolist(), boolean=(rng.random(seconds) > 0.5).tolist())
        else:
            batch = from_columns([stream] * seconds, times.tolist(), string=["run"] * seconds)
        await gw.ingest(batch)
    end = datetime.fromtimestamp((now - NS_PER_S) / NS_PER_S, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return len(streams) * seconds, end


def _rounded(rows: Any) -> Any:
    """Rows with floats to 9 significant digits (a sum in another order differs in the last bits)."""
    return [{k: float(f"{v:.9g}") if isinstance(v, float) else v for k, v in r.items()} for r in rows]


async def timed(gw: Gateway, statement: str, repeat: int) -> tuple[float, Any]:
    best, rows = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        table, _ = await gw.run_query(lambda r: sql_module.run_statement(r, gw, statement, 0, 20_000))
        best = min(best, time.perf_counter() - t0)
        rows = table.to_pylist()
    return best, rows


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({"gateway": {"name": "bench", "data_dir": str(Path(tmp) / "data")},
                            "api": {"host": "127.0.0.1", "port": 0},
                            "models": [{"path": str(ROOT / "examples" / "models")}],
                            "storage": {"compact_interval": "1h"}}, env={})
        gw = Gateway(cfg)
        await gw.start()
        try:
            n, end = await fill(gw, args.hours)
            print(f"{n:,} values in the store ({args.hours} h x 1/s x {n // (args.hours * 3600)} streams); "
                  f"best of {args.repeat}; the machine may be shared")
            print(f"{'query':<26} {'push-down':>10} {'whole view':>11} {'ratio':>7}  rows")
            real_scan_of = sql_module.scan_of
            for name, statement in queries(end).items():
                fast, rows = await timed(gw, statement, args.repeat)
                sql_module.scan_of = lambda *a, **k: Scan()  # type: ignore[assignment]  # the old path
                try:
                    slow, old_rows = await timed(gw, statement, args.repeat)
                finally:
                    sql_module.scan_of = real_scan_of  # type: ignore[assignment]
                assert _rounded(rows) == _rounded(old_rows), (name, rows[:3], old_rows[:3])
                print(f"{name:<26} {fast * 1000:>8.0f} ms {slow * 1000:>8.0f} ms {slow / fast:>6.1f}x  {len(rows)}")
        finally:
            await gw.stop()


if __name__ == "__main__":
    asyncio.run(main())
