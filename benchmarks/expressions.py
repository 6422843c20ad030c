"""Expression engine: transform evaluations/s against plain numpy on the same arrays (the ceiling).

    .venv/bin/python benchmarks/expressions.py [--assets 1000] [--points 1000] [--repeat 3]

A model with 5 numeric transforms; every asset evaluates each of them over a batch of ``--points`` trigger
points (one compiled expression per transform, shared by all assets, as the gateway does). The ceiling
computes the same arithmetic with numpy expressions written by hand (no masks, no no-output rules).
Target: the engine reaches at least 30 % of the ceiling.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asset_models.expressions import VarInfo, compile_expression  # noqa: E402

Arrays = dict[str, np.ndarray]


def _np_if(p: np.ndarray) -> np.ndarray:
    return np.where(p > 5, p * 2, np.nan)


TRANSFORMS: list[tuple[str, tuple[str, ...], Callable[..., np.ndarray]]] = [
    ("9/5 * t + 32", ("t",), lambda t: 9 / 5 * t + 32),
    ("if(gt(p, 5), p * 2, none)", ("p",), _np_if),
    ("sqrt(a^2 + b^2)", ("a", "b"), lambda a, b: np.sqrt(a**2 + b**2)),
    ("(g / (g + b)) * 100", ("g", "b"), lambda g, b: (g / (g + b)) * 100),
    ("abs(x - y) % 7", ("x", "y"), lambda x, y: np.fmod(np.abs(x - y), 7)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    names = sorted({v for _, vs, _ in TRANSFORMS for v in vs})
    batches: list[Arrays] = [{v: rng.uniform(0.0, 10.0, args.points) for v in names} for _ in range(args.assets)]
    compiled = [(compile_expression(text, {v: VarInfo("DOUBLE") for v in vs}, "transform"), vs, ref)
                for text, vs, ref in TRANSFORMS]

    # the engine agrees with numpy before it is timed
    for c, vs, ref in compiled:
        r = c.evaluate({v: batches[0][v] for v in vs})
        expected = ref(*[batches[0][v] for v in vs])
        ok = np.isfinite(expected)
        assert np.array_equal(r.valid, ok), c.text
        assert np.allclose(r.values[ok], expected[ok], rtol=1e-12), c.text

    evaluations = args.assets * args.points
    print(f"transform evaluations: {args.assets} assets x {args.points} points per transform, best of {args.repeat}")
    print(f"{'transform':<28} {'engine /s':>14} {'numpy /s':>14} {'ratio':>7}")
    total_engine = total_numpy = 0.0
    for c, vs, ref in compiled:
        engine = _best(args.repeat, lambda c=c, vs=vs: [c.evaluate({v: b[v] for v in vs}) for b in batches])
        ceiling = _best(args.repeat, lambda vs=vs, ref=ref: [ref(*[b[v] for v in vs]) for b in batches])
        total_engine += engine
        total_numpy += ceiling
        print(f"{c.text:<28} {evaluations / engine:>14,.0f} {evaluations / ceiling:>14,.0f} "
              f"{ceiling / engine:>6.0%}")
    n = len(compiled) * evaluations
    print(f"{'all 5 transforms':<28} {n / total_engine:>14,.0f} {n / total_numpy:>14,.0f} "
          f"{total_numpy / total_engine:>6.0%}   (target >= 30%)")


def _best(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    main()
