"""Transforms and metrics through the gateway's own compute path, against a numpy ceiling.

    .venv/bin/python benchmarks/compute.py [--assets 1000] [--points 1000] [--metric-assets 2000]

1. Transforms: a model with 5 numeric transforms, 1,000 assets, fed batches of every asset's inputs at
   full speed through ``TransformEngine.process`` (trigger detection, input buffers, latest-value lookups,
   one vectorised evaluation per model transform, output batches). The ceiling is plain numpy evaluating
   the same arithmetic on the same arrays.
2. Metrics: 10,000 metric properties (2,000 assets x 5 metrics over 1-minute windows) computed at one
   window close, reading their inputs from a real store (DuckDB over the WAL-resident rows).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asset_models.documents import build_catalog  # noqa: E402
from asset_models.metrics import MetricPlan  # noqa: E402
from asset_models.registry import Registry  # noqa: E402
from asset_models.transforms import TransformEngine, TransformPlan  # noqa: E402
from sitewise_edge.config import StorageConfig  # noqa: E402
from sitewise_edge.runtime.metrics import compute_windows  # noqa: E402
from sitewise_edge.samples import from_columns  # noqa: E402
from storage.store import Store  # noqa: E402

NS = 10**9
INPUTS = ("t", "p", "a", "b", "g")
TRANSFORMS = {  # name: (expression, variables, numpy ceiling over the input arrays)
    "F": ("9/5 * t + 32", {"t": "t"}, lambda v: 9 / 5 * v["t"] + 32),
    "Double": ("if(gt(p, 5), p * 2, none)", {"p": "p"}, lambda v: np.where(v["p"] > 5, v["p"] * 2, np.nan)),
    "Norm": ("sqrt(a^2 + b^2)", {"a": "a", "b": "b"}, lambda v: np.sqrt(v["a"] ** 2 + v["b"] ** 2)),
    "Share": ("(g / (g + b)) * 100", {"g": "g", "b": "b"}, lambda v: v["g"] / (v["g"] + v["b"]) * 100),
    "Mod": ("abs(t - p) % 7", {"t": "t", "p": "p"}, lambda v: np.fmod(np.abs(v["t"] - v["p"]), 7)),
}
METRICS = {
    "Avg": "avg(t)", "Max": "max(t)", "Spread": "max(t) - min(t)", "Count": "count(t)", "Sum": "sum(t)",
}


def pid(name: str) -> str:
    return str(uuid.UUID(bytes=uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{name}").bytes, version=4))


def registry(assets: int, with_transforms: bool, with_metrics: bool) -> Registry:
    props: list[dict[str, Any]] = [{"id": pid(n), "name": n, "dataType": "DOUBLE", "type": {"measurement": {}}}
                                   for n in INPUTS]
    if with_transforms:
        for name, (expr, variables, _) in TRANSFORMS.items():
            props.append({"id": pid(name), "name": name, "dataType": "DOUBLE", "type": {"transform": {
                "expression": expr,
                "variables": [{"name": k, "value": {"propertyId": pid(v)}} for k, v in variables.items()]}}})
    if with_metrics:
        for name, expr in METRICS.items():
            props.append({"id": pid(name), "name": name, "dataType": "DOUBLE", "type": {"metric": {
                "expression": expr, "variables": [{"name": "t", "value": {"propertyId": pid("t")}}],
                "window": {"tumbling": {"interval": "1m"}}}}})
    docs: list[tuple[str, Any]] = [("m", {"assetModelName": "M", "assetModelId": pid("M"),
                                          "assetModelProperties": props})]
    for i in range(assets):
        docs.append((f"a{i}", {"assetName": f"A{i}", "assetModelId": pid("M"), "assetId": pid(f"asset{i}"),
                               "assetProperties": [{"id": pid(n), "alias": f"/a{i}/{n}"} for n in INPUTS]}))
    return Registry(build_catalog(docs))


def transforms(assets: int, points: int, seconds_per_batch: int) -> tuple[float, float, int]:
    reg = registry(assets, True, False)
    engine = TransformEngine(TransformPlan.build(reg))
    rng = np.random.default_rng(1)
    t0 = time.time_ns() - 3600 * NS
    batches = []
    names = np.array([f"/a{i}/{n}" for i in range(assets) for n in INPUTS], dtype=object)
    for k in range(0, points, seconds_per_batch):  # every input of every asset, once a second
        secs = np.arange(k, min(k + seconds_per_batch, points))
        streams = np.tile(names, len(secs))
        times = np.repeat(t0 + secs * NS, len(names))
        batches.append(from_columns(pa.array(streams, pa.string()), times, double=rng.uniform(1, 10, len(streams))))
    started = time.perf_counter()
    outputs = 0
    for batch in batches:
        out = engine.process(batch)
        outputs += 0 if out is None else out.num_rows
    ours = time.perf_counter() - started
    # the ceiling: the same arithmetic, one numpy call per formula over all the points at once
    v = {n: rng.uniform(1, 10, assets * points) for n in INPUTS}
    started = time.perf_counter()
    for _, _, fn in TRANSFORMS.values():
        fn(v)
    ceiling = time.perf_counter() - started
    return ours, ceiling, outputs


async def metrics(assets: int) -> tuple[float, int]:
    reg = registry(assets, False, True)
    plan = MetricPlan.build(reg)
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d), StorageConfig(compact_interval="1h"))
        await store.open()
        window_end = (time.time_ns() // (60 * NS) - 1) * 60 * NS
        rng = np.random.default_rng(2)
        for s in range(60):  # a minute of 1 Hz data for every input of every asset
            streams = [f"/a{i}/t" for i in range(assets)]
            await store.append(from_columns(streams, np.full(assets, window_end - (59 - s) * NS),
                                            double=rng.normal(50, 5, assets)))
        started = time.perf_counter()
        rows = 0
        with store.reader() as reader:
            for group in plan.groups:  # what MetricRunner does at a window close
                out = compute_windows(reader, group, np.array([window_end]))
                rows += 0 if out is None else out.num_rows
        elapsed = time.perf_counter() - started
        await store.close()
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--points", type=int, default=120)
    parser.add_argument("--metric-assets", type=int, default=2000)
    args = parser.parse_args()
    print(f"transforms: {args.assets} assets x {len(TRANSFORMS)} transforms, {args.points} points each ...",
          file=sys.stderr)
    runs = [(seconds, *transforms(args.assets, args.points, seconds)) for seconds in (1, 10, 60)]
    evaluations = args.assets * args.points * len(TRANSFORMS)
    print(f"metrics: {args.metric_assets * len(METRICS):,} metric properties at one window close ...",
          file=sys.stderr)
    elapsed, rows = asyncio.run(metrics(args.metric_assets))
    print("| measurement | sitewise-edge | ceiling | ratio |")
    print("|---|---|---|---|")
    for seconds, ours, ceiling, outputs in runs:
        print(f"| transform evaluations/s, batches of {seconds} s x {args.assets * len(INPUTS):,} values "
              f"({outputs:,} outputs) | {evaluations / ours:,.0f} | {evaluations / ceiling:,.0f} (numpy) | "
              f"{ceiling / ours:.1%} |")
    print(f"| metric window close, {args.metric_assets * len(METRICS):,} properties ({rows:,} values) | "
          f"{elapsed * 1000:,.0f} ms | - | - |")


if __name__ == "__main__":
    main()
