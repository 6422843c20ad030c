"""How sample rows are laid out in Parquet (store layout 2): time series encodings, lossless.

Rows are sorted by stream then time, so each encoding decision is made per stream (per file):

- **time** = ``time_s`` (the nearest whole second, delta-encoded: a 1 Hz stream costs nearly nothing)
  plus the signed remainder ``time_frac`` in units of 10^``time_exp`` ns, the coarsest unit that holds
  every remainder of the stream exactly (exact ticks: none; millisecond clocks: ms; OPC UA: 100 ns).
  Coarse remainders (ms) take few distinct values and are dictionary-encoded; fine ones delta-encoded.
- **doubles** that are decimals with at most 6 fractional digits (what PLCs and OPC UA servers
  mostly send, e.g. 23.45) are stored as integer mantissas ``dec`` with exponent ``dec_exp``
  (delta-encoded: a slow signal has small steps); doubles that are exact 32-bit floats (a PLC REAL)
  as ``single``; every other double, NaN and infinities included, as ``double`` (byte-stream-split).
  The round trip is checked per value before a stream is encoded: decoding gives the same bits.
- integers delta-encoded; strings and stream names dictionary-encoded; zstd over everything.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.clock import NS_PER_S
from sitewise_edge.samples import SCHEMA

TIME_UNITS = (9, 6, 3, 2, 0)  # candidate exponents of the sub-second unit, coarsest first
MAX_DEC_EXP = 6
EXACT_INT = 2.0**53
DEC_DIVISORS = np.array([10.0**e for e in range(MAX_DEC_EXP + 1)])

FILE_SCHEMA = pa.schema([
    pa.field("stream", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("time_s", pa.int64(), nullable=False),
    pa.field("time_frac", pa.int32(), nullable=False),
    pa.field("time_exp", pa.int8(), nullable=False),
    pa.field("double", pa.float64()),
    pa.field("dec", pa.int64()),
    pa.field("dec_exp", pa.int8()),
    pa.field("single", pa.float32()),
    pa.field("integer", pa.int64()),
    pa.field("string", pa.string()),
    pa.field("boolean", pa.bool_()),
    pa.field("quality", pa.int8(), nullable=False),
])

def write_options(table: pa.Table) -> dict[str, object]:
    """Parquet options for an encoded table: the remainder column's encoding depends on its unit."""
    options = dict(WRITE_OPTIONS)
    exp = table.column("time_exp").to_numpy(zero_copy_only=False) if table.num_rows else np.zeros(0)
    coarse = not len(exp) or float(np.mean(exp >= 3)) >= 0.9
    encodings = dict(WRITE_OPTIONS["column_encoding"])  # type: ignore[call-overload]
    if coarse:
        options["use_dictionary"] = [*WRITE_OPTIONS["use_dictionary"], "time_frac"]  # type: ignore[misc]
        del encodings["time_frac"]
    options["column_encoding"] = encodings
    return options


WRITE_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": ["stream", "string", "time_exp", "dec_exp", "quality"],
    "column_encoding": {
        "time_s": "DELTA_BINARY_PACKED",
        "time_frac": "DELTA_BINARY_PACKED",
        "dec": "DELTA_BINARY_PACKED",
        "integer": "DELTA_BINARY_PACKED",
        "double": "BYTE_STREAM_SPLIT",
        "single": "BYTE_STREAM_SPLIT",
    },
    "write_statistics": ["stream", "time_s"],
    "row_group_size": 1 << 16,  # small enough that a one-stream query skips most of a day's file
}

# DuckDB expressions that give back the sample columns
SQL_TIME_NS = ("time_s * 1000000000 + CAST(time_frac AS BIGINT) * "
               "CAST(CASE time_exp WHEN 0 THEN 1 WHEN 2 THEN 100 WHEN 3 THEN 1000 WHEN 6 THEN 1000000 "
               "ELSE 0 END AS BIGINT)")
SQL_DOUBLE = ("COALESCE(double, CAST(dec AS DOUBLE) / CAST(CASE dec_exp WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 "
              "THEN 100 WHEN 3 THEN 1000 WHEN 4 THEN 10000 WHEN 5 THEN 100000 ELSE 1000000 END AS DOUBLE), "
              "CAST(single AS DOUBLE))")
SQL_COLUMNS = f"stream, {SQL_TIME_NS} AS time_ns, {SQL_DOUBLE} AS double, integer, string, boolean, quality"


def _starts(codes: np.ndarray) -> np.ndarray:
    """First row of each run of equal stream codes (rows are sorted by stream)."""
    return np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))


def _per_stream_all(ok: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row: whether every row of its stream is ``ok``."""
    return np.repeat(np.logical_and.reduceat(ok, starts), lengths)


def encode(table: pa.Table) -> pa.Table:
    """Sample rows (sorted by stream, time) -> the file schema."""
    n = table.num_rows
    stream = table.column("stream").combine_chunks()
    if not pa.types.is_dictionary(stream.type):
        stream = stream.dictionary_encode()
    codes = stream.indices.to_numpy(zero_copy_only=False)
    starts = _starts(codes) if n else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.append(starts, n))

    t = table.column("time").cast(pa.int64()).to_numpy()
    # the nearest whole second: a source clock jittering around the second keeps a steady seconds
    # column (delta 1 at 1 Hz) and a small signed remainder
    seconds = (t + NS_PER_S // 2) // NS_PER_S
    frac = t - seconds * NS_PER_S
    exp = np.zeros(n, dtype=np.int8)
    undecided = np.ones(n, dtype=bool)
    for e in TIME_UNITS:
        fits = _per_stream_all(frac % (10**e) == 0, starts, lengths) if n else np.zeros(0, dtype=bool)
        pick = fits & undecided
        exp[pick] = e
        undecided &= ~pick
    unit = np.power(10, exp.astype(np.int64))
    time_frac = np.where(exp == 9, 0, frac // unit).astype(np.int32)

    dbl = table.column("double")
    has = pc.is_valid(dbl).to_numpy(zero_copy_only=False)
    v = pc.fill_null(dbl, 0.0).to_numpy(zero_copy_only=False)
    dec = np.zeros(n, dtype=np.int64)
    dec_exp = np.full(n, -1, dtype=np.int8)
    undecided = np.ones(n, dtype=bool)
    finite = np.isfinite(v)
    negative_zero = (v == 0) & np.signbit(v)  # an integer mantissa would lose the sign
    with np.errstate(all="ignore"):
        for e in range(MAX_DEC_EXP + 1):
            m = np.round(v * DEC_DIVISORS[e])
            ok = ~has | (finite & ~negative_zero & (np.abs(m) < EXACT_INT) & (m / DEC_DIVISORS[e] == v))
            fits = _per_stream_all(ok, starts, lengths) & undecided if n else np.zeros(0, dtype=bool)
            dec[fits] = m[fits].astype(np.int64)
            dec_exp[fits] = e
            undecided &= ~fits
        as_single = v.astype(np.float32)
        single_ok = _per_stream_all(~has | (as_single.astype(np.float64) == v), starts, lengths) & undecided \
            if n else np.zeros(0, dtype=bool)
    use_dec = has & (dec_exp >= 0)
    use_single = has & single_ok
    use_double = has & ~use_dec & ~use_single
    return pa.Table.from_arrays(
        [
            stream,
            pa.array(seconds, pa.int64()),
            pa.array(time_frac, pa.int32()),
            pa.array(exp, pa.int8()),
            pa.array(v, pa.float64(), mask=~use_double),
            pa.array(dec, pa.int64(), mask=~use_dec),
            pa.array(dec_exp, pa.int8(), mask=~use_dec),
            pa.array(as_single, pa.float32(), mask=~use_single),
            table.column("integer"),
            table.column("string"),
            table.column("boolean"),
            table.column("quality"),
        ],
        schema=FILE_SCHEMA,
    )


def decode(table: pa.Table) -> pa.Table:
    """A file's rows -> sample rows (the inverse of :func:`encode`)."""
    exp = table.column("time_exp").to_numpy(zero_copy_only=False).astype(np.int64)
    frac = table.column("time_frac").to_numpy(zero_copy_only=False).astype(np.int64)
    t = table.column("time_s").to_numpy(zero_copy_only=False) * NS_PER_S + np.where(
        exp == 9, 0, frac * np.power(10, np.minimum(exp, 8)))
    dec = table.column("dec")
    has_dec = pc.is_valid(dec).to_numpy(zero_copy_only=False)
    divisor = DEC_DIVISORS[pc.fill_null(table.column("dec_exp"), 0).to_numpy(zero_copy_only=False)]
    dec_value = pa.array(pc.fill_null(dec, 0).to_numpy(zero_copy_only=False) / divisor, pa.float64(),
                         mask=~has_dec)
    double = pc.coalesce(table.column("double"), dec_value, pc.cast(table.column("single"), pa.float64()))
    return pa.Table.from_arrays(
        [
            table.column("stream"),
            pa.array(t, pa.int64()).cast(SCHEMA.field("time").type),
            double,
            table.column("integer"),
            table.column("string"),
            table.column("boolean"),
            table.column("quality"),
        ],
        schema=SCHEMA,
    )
