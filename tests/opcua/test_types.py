"""Every built-in type, arrays and a structure, written on a real asyncua server and read back
through the connector (poll and subscribe): the stored column, value and quality."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.common.structures104 import new_struct, new_struct_field

from connectors.opcua import OpcUaStreamingConnector, make_opcua_connector
from connectors.opcua.config import OpcUaSource
from connectors.opcua.convert import convert
from sitewise_edge.samples import Quality, value_types
from sitewise_edge.simulators.opcua import OpcUaSimulator
from tests.opcua.test_opcua import collect

live = pytest.mark.asyncio(loop_scope="module")
VT = ua.VariantType
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
IDX = 2

# name -> (variant written on the server, stored column, stored value, quality)
CASES: dict[str, tuple[ua.Variant, str | None, Any, Quality]] = {
    "Boolean": (ua.Variant(True, VT.Boolean), "boolean", True, Quality.GOOD),
    "SByte": (ua.Variant(-5, VT.SByte), "integer", -5, Quality.GOOD),
    "Byte": (ua.Variant(250, VT.Byte), "integer", 250, Quality.GOOD),
    "Int16": (ua.Variant(-300, VT.Int16), "integer", -300, Quality.GOOD),
    "UInt16": (ua.Variant(60000, VT.UInt16), "integer", 60000, Quality.GOOD),
    "Int32": (ua.Variant(-70000, VT.Int32), "integer", -70000, Quality.GOOD),
    "UInt32": (ua.Variant(4_000_000_000, VT.UInt32), "integer", 4_000_000_000, Quality.GOOD),
    "Int64": (ua.Variant(-(2**40), VT.Int64), "integer", -(2**40), Quality.GOOD),
    "UInt64": (ua.Variant(2**40, VT.UInt64), "integer", 2**40, Quality.GOOD),
    "UInt64Big": (ua.Variant(2**64 - 1, VT.UInt64), "double", float(2**64 - 1), Quality.GOOD),
    "Float": (ua.Variant(1.5, VT.Float), "double", 1.5, Quality.GOOD),
    "Double": (ua.Variant(21.25, VT.Double), "double", 21.25, Quality.GOOD),
    "DoubleNaN": (ua.Variant(math.nan, VT.Double), "double", math.nan, Quality.UNCERTAIN),
    "DoubleInf": (ua.Variant(math.inf, VT.Double), "double", math.inf, Quality.UNCERTAIN),
    "String": (ua.Variant("RUNNING", VT.String), "string", "RUNNING", Quality.GOOD),
    "NullString": (ua.Variant(None, VT.String), None, None, Quality.BAD),
    "DateTime": (ua.Variant(T0, VT.DateTime), "string", "2024-05-01T12:00:00.250000Z", Quality.GOOD),
    "Guid": (ua.Variant(uuid.UUID(int=1), VT.Guid), "string", "00000000-0000-0000-0000-000000000001",
             Quality.GOOD),
    "ByteString": (ua.Variant(b"\x00\xff", VT.ByteString), "string", "AP8=", Quality.GOOD),
    "XmlElement": (ua.Variant(ua.XmlElement("<a>1</a>"), VT.XmlElement), "string", "<a>1</a>", Quality.GOOD),
    "NodeId": (ua.Variant(ua.NodeId("Press1.Speed", 2), VT.NodeId), "string", "ns=2;s=Press1.Speed",
               Quality.GOOD),
    "ExpandedNodeId": (ua.Variant(ua.ExpandedNodeId(ua.Int32(85)), VT.ExpandedNodeId), "string", "i=85",
                       Quality.GOOD),
    "StatusCode": (ua.Variant(ua.StatusCode(ua.StatusCodes.BadTimeout), VT.StatusCode), "string", "BadTimeout",
                   Quality.GOOD),
    "QualifiedName": (ua.Variant(ua.QualifiedName("Press1", 2), VT.QualifiedName), "string", "2:Press1",
                      Quality.GOOD),
    "LocalizedText": (ua.Variant(ua.LocalizedText("Ofen", "de"), VT.LocalizedText), "string", "Ofen", Quality.GOOD),
    "Int32Array": (ua.Variant([1, 2, 3], VT.Int32), "string", "[1,2,3]", Quality.GOOD),
    "DoubleArray": (ua.Variant([1.5, math.nan], VT.Double), "string", "[1.5,null]", Quality.GOOD),
    "StringArray": (ua.Variant(["a", "b"], VT.String), "string", '["a","b"]', Quality.GOOD),
    "Matrix": (ua.Variant([[1, 2], [3, 4]], VT.Int32, Dimensions=[2, 2]), "string", "[[1,2],[3,4]]", Quality.GOOD),
}
STRUCT = {"Count": 7, "Level": 2.5, "Label": "tank A", "Seen": "2024-05-01T12:00:00.250000Z", "Flags": [True, False]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def typed_nodes(sim: OpcUaSimulator) -> AsyncIterator[list[dict[str, str]]]:
    """A ``Types`` folder on the shared server: one variable per case plus a structure and an array of it."""
    server = sim.server
    assert server is not None
    folder = await server.nodes.objects.add_folder(ua.NodeId("Types", IDX), ua.QualifiedName("Types", IDX))
    for name, (variant, *_) in CASES.items():
        await folder.add_variable(ua.NodeId(f"Types.{name}", IDX), ua.QualifiedName(name, IDX), variant)
    dtype, _ = await new_struct(server, IDX, "TankReading", [
        new_struct_field("Count", VT.UInt32), new_struct_field("Level", VT.Double),
        new_struct_field("Label", VT.String), new_struct_field("Seen", VT.DateTime),
        new_struct_field("Flags", VT.Boolean, array=True)])
    await server.load_data_type_definitions()
    reading = ua.TankReading(Count=7, Level=2.5, Label="tank A", Seen=T0, Flags=[True, False])  # type: ignore[attr-defined]
    await folder.add_variable(ua.NodeId("Types.Struct", IDX), ua.QualifiedName("Struct", IDX),
                              ua.Variant(reading, VT.ExtensionObject), datatype=dtype.nodeid)
    await folder.add_variable(ua.NodeId("Types.StructArray", IDX), ua.QualifiedName("StructArray", IDX),
                              ua.Variant([reading, reading], VT.ExtensionObject), datatype=dtype.nodeid)
    # The client must learn the structure from the server, as it would in another process: forget the
    # decoder this process's server registered (its encoder stays).
    cls = ua.TankReading  # type: ignore[attr-defined]
    del ua.extension_objects_by_typeid[ua.typeid_by_extension_objects[cls]]
    delattr(ua, "TankReading")
    names = [*CASES, "Struct", "StructArray"]
    yield [{"node_id": f"ns={IDX};s=Types.{n}", "alias": f"/types/{n}"} for n in names]
    await folder.delete(recursive=True)


def stored(batch: pa.RecordBatch) -> dict[str, tuple[str | None, Any, int]]:
    """alias -> (column, value, quality)."""
    cols = value_types(batch).to_pylist()
    out: dict[str, tuple[str | None, Any, int]] = {}
    for i, (alias, col) in enumerate(zip(batch.column("stream").cast(pa.string()).to_pylist(), cols, strict=True)):
        value = batch.column(col)[i].as_py() if col else None
        out[alias] = (col, value, batch.column("quality")[i].as_py())
    return out


def check(seen: dict[str, tuple[str | None, Any, int]]) -> None:
    for name, (_, column, value, quality) in CASES.items():
        col, got, q = seen[f"/types/{name}"]
        assert (name, col, q) == (name, column, quality)
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got)
        else:
            assert (name, got) == (name, value)
    col, got, q = seen["/types/Struct"]
    assert (col, q) == ("string", Quality.GOOD)
    assert json.loads(got) == STRUCT
    col, got, q = seen["/types/StructArray"]
    assert (col, q, json.loads(got)) == ("string", Quality.GOOD, [STRUCT, STRUCT])


@live
@pytest.mark.parametrize("mode", ["poll", "subscribe"])
async def test_types_round_trip(sim: OpcUaSimulator, typed_nodes: list[dict[str, str]], mode: str) -> None:
    cfg = OpcUaSource.model_validate({"name": "types", "type": "opcua", "endpoint": sim.endpoint, "mode": mode,
                                      "interval": 0.2, "timeout": 2, "nodes": typed_nodes})
    connector = make_opcua_connector(cfg)
    await connector.open()
    try:
        if isinstance(connector, OpcUaStreamingConnector):
            want = {n["alias"] for n in typed_nodes}
            seen: dict[str, Any] = {}
            async for batch in connector.stream():
                seen.update(stored(batch))
                if want <= seen.keys():
                    break
        else:
            seen = stored(await connector.poll())
        check(seen)
        assert set(connector.status.tag_errors) == {"/types/NullString"}
        assert "no value" in connector.status.tag_errors["/types/NullString"]
    finally:
        await connector.close()


def test_undecoded_structure_is_bad_and_says_why() -> None:
    raw = ua.ExtensionObject(TypeId=ua.NodeId(5001, 3), Body=b"\x01\x02")
    tqv = convert(ua.DataValue(ua.Variant(raw, VT.ExtensionObject)))
    assert (tqv.value, tqv.quality) == (None, Quality.BAD)
    assert tqv.error is not None and "structure ns=3;i=5001 is not described by the server" in tqv.error


__all__ = ["collect"]
