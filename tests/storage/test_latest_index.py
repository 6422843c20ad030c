"""The latest-value index: O(rows of the batch) upkeep, the same answers as a brute-force model (issue 10)."""

from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sitewise_edge.samples import Sample, from_columns
from storage.latest import LatestIndex

NAMES = [f"/s{i}" for i in range(6)]

row = st.tuples(st.sampled_from(NAMES), st.integers(0, 5), st.sampled_from(["double", "integer", "string", "boolean",
                                                                          "null"]),
                st.integers(-3, 3), st.sampled_from([0, 1, 2]))


def batch_of(rows: list[tuple[str, int, str, int, int]]) -> pa.RecordBatch:
    def col(kind: str, conv: object) -> list[object]:
        return [conv(v) if k == kind else None for _, _, k, v, _ in rows]  # type: ignore[operator]

    return from_columns([r[0] for r in rows], [r[1] for r in rows], double=col("double", float),
                        integer=col("integer", int), string=col("string", str), boolean=col("boolean", bool),
                        quality=[r[4] for r in rows])


def plain(table: pa.Table) -> list[dict[str, object]]:
    return table.set_column(1, "time", table.column("time").cast(pa.int64())).to_pylist()  # type: ignore[no-any-return]


def as_dict(table: pa.Table) -> dict[str, tuple[object, ...]]:
    out = {}
    for r in plain(table):
        out[r["stream"]] = (r["time"], r["double"], r["integer"], r["string"], r["boolean"], r["quality"])
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(row, min_size=1, max_size=8), min_size=1, max_size=8), st.integers(0, 8))
def test_index_matches_a_brute_force_model(batches: list[list[tuple[str, int, str, int, int]]], cut: int) -> None:
    index = LatestIndex()
    model: dict[str, tuple[int, int, tuple[object, ...]]] = {}  # stream -> (time, version, row)
    for seq, rows in enumerate(batches, start=1):
        b = batch_of(rows)
        index.update(seq, b)
        for i, (stream, shown) in enumerate(as_dict_rows(b)):
            t, version = rows[i][1], (seq << 24) + i
            old = model.get(stream)
            if old is None or t > old[0] or (t == old[0] and version >= old[1]):
                model[stream] = (t, version, shown)
    got = as_dict(index.all())
    assert got == {k: v[2] for k, v in model.items()}
    for name in NAMES:
        one = index.get(name)
        assert as_dict(one) == ({name: model[name][2]} if name in model else {})
        assert as_value(index.value(name)) == (model[name][2] if name in model else None)
    copied = index.copy()
    copied.drop_newer_than(cut)
    assert set(as_dict(copied.all())) <= set(got)
    assert as_dict(index.all()) == got  # the copy is independent


def as_value(sample: Sample | None) -> tuple[object, ...] | None:
    """A :class:`Sample` in the shape of :func:`as_dict`'s rows (time, double, integer, string, boolean, quality)."""
    if sample is None:
        return None
    values = [sample.value if sample.column == c else None for c in ("double", "integer", "string", "boolean")]
    assert sample.column is None or values.count(None) == 3
    return (sample.time_ns, *values, sample.quality)


def as_dict_rows(b: pa.RecordBatch) -> list[tuple[str, tuple[object, ...]]]:
    return [(r["stream"], (r["time"], r["double"], r["integer"], r["string"], r["boolean"], r["quality"]))
            for r in plain(pa.table(b))]


def test_save_and_load_keep_every_column(tmp_path: Path) -> None:
    index = LatestIndex()
    index.update(1, from_columns(["/a", "/b", "/c", "/d"], [5, 6, 7, 8], double=[1.5, None, None, None],
                                 integer=[None, 7, None, None], string=[None, None, "x", None],
                                 boolean=[None, None, None, True], quality=[0, 1, 2, 0]))
    index.save(tmp_path / "latest.parquet")
    loaded = LatestIndex.load(tmp_path / "latest.parquet")
    assert as_dict(loaded.all()) == as_dict(index.all())
    loaded.update(2, from_columns(["/b", "/e"], [6, 1], integer=[8, 9]))  # equal time, later write wins
    assert as_dict(loaded.get("/b"))["/b"][2] == 8 and len(loaded) == 5


def test_a_new_dictionary_with_known_and_new_names() -> None:
    index = LatestIndex()
    names = [f"/n{i}" for i in range(1000)]
    index.update(1, from_columns(names, list(range(1000)), double=[float(i) for i in range(1000)]))
    index.update(2, from_columns(["/n5", "/new", "/n999"], [10**6, 1, 10**6], double=[-1.0, -2.0, -3.0]))
    table = as_dict(index.all())
    assert len(table) == 1001
    assert table["/n5"][1] == -1.0 and table["/new"][1] == -2.0 and table["/n999"][1] == -3.0
    assert table["/n6"][1] == 6.0
