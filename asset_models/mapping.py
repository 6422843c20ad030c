"""Data streams onto asset properties: per-value type checks on whole sample batches.

SiteWise refuses a value whose type differs from its property's data type ("a double-type
asset property can't receive OPC UA integer values") and ingests into measurements only.
:func:`check_batch` applies both rules to a batch without a Python loop per row: it looks
each *distinct* stream up once (the stream column is dictionary-encoded) and then works on
whole columns with Arrow and numpy kernels. Streams that belong to no asset pass unchanged: they are
disassociated data streams, which SiteWise accepts too.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asset_models.checks import alias_problem
from asset_models.errors import ModelInvalid
from asset_models.registry import PropertyRef, Registry
from sitewise_edge.samples import VALUE_COLUMNS, Quality

log = logging.getLogger(__name__)

# Per distinct stream, a rule: 0 = no asset (accept), 1..4 = a measurement whose value must be in
# VALUE_COLUMNS[rule - 1], 5 = a STRUCT measurement (no plain value fits), 6 = not a measurement.
_FREE, _STRUCT, _NOT_MEASUREMENT = 0, 5, 6
_RULE_OF_TYPE = {"DOUBLE": 1, "INTEGER": 2, "STRING": 3, "BOOLEAN": 4, "STRUCT": _STRUCT}
# Per rejected row, a cause: 0 = null value with GOOD quality, 1..4 = the value column, 5 = not a measurement.
_NULL_GOOD, _CAUSES = 0, 8
_TYPE_NAMES = ("DOUBLE", "INTEGER", "STRING", "BOOLEAN")


def check_batch(batch: pa.RecordBatch, registry: Registry) -> tuple[pa.RecordBatch, pa.RecordBatch, list[str]]:
    """Split a sample batch into (accepted, rejected, one reason per rejected row).

    A row is rejected when its stream is a property whose data type differs from the row's
    value column, when it writes to an attribute, transform or metric, or when it has a null
    value with GOOD quality. Rows keep their order within each part.
    """
    stream = batch.column("stream")
    if not pa.types.is_dictionary(stream.type):
        stream = stream.dictionary_encode()
    streams: list[str] = stream.dictionary.to_pylist()
    refs = [registry.property_of_stream(s) for s in streams]  # one lookup per distinct stream
    if batch.num_rows == 0 or all(r is None for r in refs):
        return batch, batch.slice(0, 0), []

    rules = np.array([_rule(r) for r in refs], dtype=np.int8)
    indices = stream.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    row_rule = rules[indices]
    value_code = _value_codes(batch)
    good = batch.column("quality").to_numpy(zero_copy_only=False) == int(Quality.GOOD)

    measurement = (row_rule != _FREE) & (row_rule != _NOT_MEASUREMENT)
    null_good = measurement & (value_code == 0) & good
    mismatch = measurement & (value_code != 0) & (value_code != row_rule)
    not_measurement = row_rule == _NOT_MEASUREMENT
    rejected = null_good | mismatch | not_measurement
    if not rejected.any():
        return batch, batch.slice(0, 0), []

    cause = np.where(not_measurement, 5, np.where(null_good, _NULL_GOOD, value_code)).astype(np.int64)
    codes = (indices * _CAUSES + cause)[rejected]
    distinct, inverse = np.unique(codes, return_inverse=True)
    texts = [_reason(streams[int(c) // _CAUSES], refs[int(c) // _CAUSES], int(c) % _CAUSES) for c in distinct]
    reasons: list[str] = np.array(texts, dtype=object)[inverse.reshape(-1)].tolist()

    mask = pa.array(rejected)
    rejected_batch = batch.filter(mask)
    accepted_batch = batch.filter(pc.invert(mask))
    log.debug("rejected %d of %d rows (%d distinct reasons)", len(reasons), batch.num_rows, len(texts))
    return accepted_batch, rejected_batch, reasons


def _value_codes(batch: pa.RecordBatch) -> np.ndarray:
    """Per row, 0 for a null value or 1..4 for the set value column (the last set one, as samples.value_types)."""
    codes = np.zeros(batch.num_rows, dtype=np.int8)
    for code, name in enumerate(VALUE_COLUMNS, start=1):
        codes[pc.is_valid(batch.column(name)).to_numpy(zero_copy_only=False)] = code
    return codes


def _rule(ref: PropertyRef | None) -> int:
    if ref is None:
        return _FREE
    if ref.kind != "measurement":
        return _NOT_MEASUREMENT
    return _RULE_OF_TYPE.get(ref.data_type, _STRUCT)


def _reason(stream: str, ref: PropertyRef | None, cause: int) -> str:
    assert ref is not None  # only associated streams are rejected
    what = f"the property {ref.property_name} of asset {ref.asset_name}"
    if cause == 5:
        return f"{stream}: {what} is {_article(str(ref.kind))}; SiteWise ingests values into measurements only"
    if cause == _NULL_GOOD:
        return f"{stream}: a null value needs BAD or UNCERTAIN quality"
    return f"{stream}: {what} has data type {ref.data_type}; the value is {_article(_TYPE_NAMES[cause - 1])}"


def _article(word: str) -> str:
    return f"an {word}" if word[0].lower() in "aeiou" else f"a {word}"


def resolve_stream(registry: Registry, asset_id: str | None, property_id: str | None, alias: str | None) -> str:
    """The stream key of an entry identified by ``propertyAlias`` or by ``assetId`` + ``propertyId``.

    A bare alias that belongs to no property is fine: it names a disassociated stream.
    Raises ModelInvalid for a missing or inconsistent identification and ModelNotFound for an
    unknown asset or property (the API answers InvalidRequestException, ResourceNotFoundException).
    """
    asset_id, property_id, alias = asset_id or None, property_id or None, alias or None
    if (asset_id is None) != (property_id is None):
        raise ModelInvalid("assetId and propertyId must be given together (or use propertyAlias).")
    if alias is not None:
        err = alias_problem(alias)
        if err:
            raise ModelInvalid(f"Invalid propertyAlias: {err}.")
    if asset_id is None or property_id is None:
        if alias is None:
            raise ModelInvalid("Either propertyAlias or both assetId and propertyId must be specified.")
        return alias
    ref = registry.property(asset_id, property_id)
    if alias is not None and alias != ref.alias:
        raise ModelInvalid(f"The propertyAlias {alias} does not match the alias of property {ref.property_id} "
                           f"of asset {ref.asset_id}.")
    return ref.stream
