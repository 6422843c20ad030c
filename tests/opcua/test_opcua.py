"""OPC UA connector: pure conversion tables, then a real asyncua server (the plant simulator)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
import yaml
from asyncua import ua
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connectors.opcua import OpcUaPollingConnector, OpcUaStreamingConnector, make_opcua_connector
from connectors.opcua.config import OpcUaSource
from connectors.opcua.convert import ConversionError, convert, pick_time_ns, quality_of, value_type, variant_value
from sitewise_edge.config import load_config
from sitewise_edge.errors import ConnectorError
from sitewise_edge.samples import Quality, ValueType, value_types
from sitewise_edge.simulators.opcua import OpcUaSimulator, example_nodes, free_port
from sitewise_edge.simulators.plant import MACHINES, SIGNALS
from tests.conftest import eventually

if TYPE_CHECKING:
    from tests.opcua.conftest import FreezingProxy

live = pytest.mark.asyncio(loop_scope="module")
VT = ua.VariantType
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
T0_NS = 1_714_564_800_250_000_000
T1 = dt.datetime(2024, 5, 1, 12, 0, 1, tzinfo=dt.UTC)
T1_NS = 1_714_564_801_000_000_000

# --- conversion tables (pure) -----------------------------------------------------------

NATURAL = [
    pytest.param(ua.Variant(True, VT.Boolean), True, ValueType.BOOLEAN, id="Boolean"),
    pytest.param(ua.Variant(-5, VT.SByte), -5, ValueType.INTEGER, id="SByte"),
    pytest.param(ua.Variant(250, VT.Byte), 250, ValueType.INTEGER, id="Byte"),
    pytest.param(ua.Variant(-300, VT.Int16), -300, ValueType.INTEGER, id="Int16"),
    pytest.param(ua.Variant(60000, VT.UInt16), 60000, ValueType.INTEGER, id="UInt16"),
    pytest.param(ua.Variant(-70000, VT.Int32), -70000, ValueType.INTEGER, id="Int32"),
    pytest.param(ua.Variant(4_000_000_000, VT.UInt32), 4_000_000_000, ValueType.INTEGER, id="UInt32"),
    pytest.param(ua.Variant(-(2**40), VT.Int64), -(2**40), ValueType.INTEGER, id="Int64"),
    pytest.param(ua.Variant(2**40, VT.UInt64), 2**40, ValueType.INTEGER, id="UInt64"),
    pytest.param(ua.Variant(2**64 - 1, VT.UInt64), float(2**64 - 1), ValueType.DOUBLE, id="UInt64-beyond-int64"),
    pytest.param(ua.Variant(1.5, VT.Float), 1.5, ValueType.DOUBLE, id="Float"),
    pytest.param(ua.Variant(21.25, VT.Double), 21.25, ValueType.DOUBLE, id="Double"),
    pytest.param(ua.Variant("RUNNING", VT.String), "RUNNING", ValueType.STRING, id="String"),
    pytest.param(ua.Variant(ua.LocalizedText("Ofen", "de"), VT.LocalizedText), "Ofen", ValueType.STRING,
                 id="LocalizedText"),
    pytest.param(ua.Variant(ua.QualifiedName("Press1", 2), VT.QualifiedName), "2:Press1", ValueType.STRING,
                 id="QualifiedName"),
    pytest.param(ua.Variant(ua.NodeId("Press1.Speed", 2), VT.NodeId), "ns=2;s=Press1.Speed", ValueType.STRING,
                 id="NodeId"),
    pytest.param(ua.Variant(uuid.UUID(int=1), VT.Guid), "00000000-0000-0000-0000-000000000001", ValueType.STRING,
                 id="Guid"),
    pytest.param(ua.Variant(b"\x00\xff", VT.ByteString), "AP8=", ValueType.STRING, id="ByteString-base64"),
    pytest.param(ua.Variant(ua.StatusCode(ua.StatusCodes.BadTimeout), VT.StatusCode), "BadTimeout",
                 ValueType.STRING, id="StatusCode"),
    pytest.param(ua.Variant(T0, VT.DateTime), "2024-05-01T12:00:00.250000Z", ValueType.STRING, id="DateTime-ISO8601"),
    pytest.param(ua.Variant([1, 2, 3], VT.Int32), "[1,2,3]", ValueType.STRING, id="Int32-array-JSON"),
    pytest.param(ua.Variant([1.5, math.nan], VT.Double), "[1.5,null]", ValueType.STRING, id="Double-array-NaN-null"),
    pytest.param(ua.Variant([True, False], VT.Boolean), "[true,false]", ValueType.STRING, id="Boolean-array"),
    pytest.param(ua.Variant(["a", "b"], VT.String), '["a","b"]', ValueType.STRING, id="String-array"),
    pytest.param(ua.Variant([T0, T1], VT.DateTime), '["2024-05-01T12:00:00.250000Z","2024-05-01T12:00:01.000000Z"]',
                 ValueType.STRING, id="DateTime-array"),
    pytest.param(ua.Variant([[1, 2], [3, 4]], VT.Int32, Dimensions=[2, 2]), "[[1,2],[3,4]]", ValueType.STRING,
                 id="Int32-matrix"),
]


@pytest.mark.parametrize(("variant", "value", "vtype"), NATURAL)
def test_variant_value(variant: ua.Variant, value: Any, vtype: ValueType) -> None:
    assert variant_value(variant) == (value, vtype)
    assert type(variant_value(variant)[0]) is type(value)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(ua.Variant(None, VT.Null), id="Null"),
        pytest.param(None, id="no-variant"),
        pytest.param(ua.Variant(ua.ExtensionObject(), VT.ExtensionObject), id="ExtensionObject"),
    ],
)
def test_unsupported_variant_is_bad(variant: ua.Variant | None) -> None:
    with pytest.raises(ConversionError):
        variant_value(variant)
    tqv = convert(ua.DataValue(variant, SourceTimestamp=T0))
    assert (tqv.value, tqv.quality) == (None, Quality.BAD)
    assert tqv.error


FORCED = [
    pytest.param(ua.Variant(7, VT.Int32), "double", 7.0, id="int-to-double"),
    pytest.param(ua.Variant(True, VT.Boolean), "double", 1.0, id="bool-to-double"),
    pytest.param(ua.Variant("2.5", VT.String), "double", 2.5, id="numeric-string-to-double"),
    pytest.param(ua.Variant("warm", VT.String), "double", None, id="text-to-double-BAD"),
    pytest.param(ua.Variant(2.6, VT.Double), "integer", 3, id="double-to-integer-rounds"),
    pytest.param(ua.Variant(math.nan, VT.Double), "integer", None, id="NaN-to-integer-BAD"),
    pytest.param(ua.Variant(" 42 ", VT.String), "integer", 42, id="string-to-integer"),
    pytest.param(ua.Variant(False, VT.Boolean), "integer", 0, id="bool-to-integer"),
    pytest.param(ua.Variant(0, VT.UInt16), "boolean", False, id="zero-to-boolean"),
    pytest.param(ua.Variant(3.0, VT.Double), "boolean", True, id="nonzero-to-boolean"),
    pytest.param(ua.Variant("TRUE", VT.String), "boolean", True, id="string-true-to-boolean"),
    pytest.param(ua.Variant("maybe", VT.String), "boolean", None, id="string-maybe-to-boolean-BAD"),
    pytest.param(ua.Variant(True, VT.Boolean), "string", "true", id="bool-to-string"),
    pytest.param(ua.Variant(1111, VT.Int32), "string", "1111", id="int-to-string"),
    pytest.param(ua.Variant(T0, VT.DateTime), "string", "2024-05-01T12:00:00.250000Z", id="datetime-to-string"),
    pytest.param(ua.Variant([1, 2], VT.Int32), "integer", None, id="array-to-integer-BAD"),
]


@pytest.mark.parametrize(("variant", "forced", "expected"), FORCED)
def test_forced_type(variant: ua.Variant, forced: str, expected: Any) -> None:
    vtype = value_type(forced)
    tqv = convert(ua.DataValue(variant, SourceTimestamp=T0), forced=vtype)
    assert tqv.type is vtype
    if expected is None:
        assert (tqv.value, tqv.quality) == (None, Quality.BAD)
        assert tqv.error
    else:
        assert (tqv.value, tqv.quality, tqv.error) == (expected, Quality.GOOD, None)
        assert type(tqv.value) is type(expected)


def test_unknown_forced_type() -> None:
    with pytest.raises(ConversionError, match="unknown value type 'float'"):
        value_type("float")


@pytest.mark.parametrize(
    ("code", "quality"),
    [
        pytest.param(ua.StatusCodes.Good, Quality.GOOD, id="Good"),
        pytest.param(ua.StatusCodes.GoodClamped, Quality.GOOD, id="GoodClamped"),
        pytest.param(ua.StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN, id="UncertainLastUsableValue"),
        pytest.param(ua.StatusCodes.UncertainSensorNotAccurate, Quality.UNCERTAIN, id="UncertainSensorNotAccurate"),
        pytest.param(ua.StatusCodes.BadSensorFailure, Quality.BAD, id="BadSensorFailure"),
        pytest.param(ua.StatusCodes.BadNodeIdUnknown, Quality.BAD, id="BadNodeIdUnknown"),
    ],
)
def test_status_to_quality(code: int, quality: Quality) -> None:
    assert quality_of(ua.StatusCode(code)) is quality
    tqv = convert(ua.DataValue(ua.Variant(1.5, VT.Double), StatusCode=ua.StatusCode(code), SourceTimestamp=T0))
    assert tqv.quality is quality
    # A Bad value carries no value (SiteWise's nullValue); Uncertain keeps it.
    assert tqv.value == (None if quality is Quality.BAD else 1.5)


@pytest.mark.parametrize(
    ("source", "server", "choice", "expected"),
    [
        pytest.param(T0, T1, "source", T0_NS, id="source"),
        pytest.param(T0, T1, "server", T1_NS, id="server"),
        pytest.param(None, T1, "source", T1_NS, id="source-missing-falls-back-to-server"),
        pytest.param(None, None, "source", 42, id="both-missing-falls-back-to-receive-time"),
        pytest.param(T0, None, "server", 42, id="server-missing-falls-back-to-receive-time"),
        pytest.param(dt.datetime(1601, 1, 1), T1, "source", T1_NS, id="source-MinDateTime-is-missing"),
        pytest.param(T0.replace(tzinfo=None), None, "source", T0_NS, id="naive-is-UTC"),
    ],
)
def test_timestamp_choice(source: dt.datetime | None, server: dt.datetime | None, choice: str, expected: int) -> None:
    dv = ua.DataValue(ua.Variant(1.0, VT.Double), SourceTimestamp=source, ServerTimestamp=server)
    assert pick_time_ns(dv, choice, received_ns=42) == expected


def test_source_picoseconds() -> None:
    dv = ua.DataValue(ua.Variant(1.0, VT.Double), SourceTimestamp=T0, SourcePicoseconds=9_999)
    assert pick_time_ns(dv) == T0_NS + 99


def test_example_nodes() -> None:
    nodes = example_nodes()
    assert len(nodes) == len(MACHINES) * len(SIGNALS)
    assert nodes[1] == {"node_id": "ns=2;s=Press1.Temperature", "alias": "/plant1/line1/press1/temperature"}
    assert example_nodes("/site")[0]["alias"] == "/site/press1/speed"


# --- against a real server -------------------------------------------------------------------

# The column each signal must land in (from the simulator's variant types).
EXPECTED_COLUMN = {
    "Speed": "double", "Temperature": "double", "Pressure": "double",
    "State": "integer", "GoodCount": "integer", "BadCount": "integer", "TemperatureX10": "integer",
    "Running": "boolean", "Fault": "boolean", "Status": "string",
}
ALIAS_COLUMN = {n["alias"]: EXPECTED_COLUMN[n["node_id"].rsplit(".", 1)[1]] for n in example_nodes()}
MISSING = {"node_id": "ns=2;s=Press9.Temperature", "alias": "/plant1/line1/press9/temperature"}


def source(endpoint: str, nodes: list[dict[str, Any]] | None = None, **kw: Any) -> OpcUaSource:
    fields: dict[str, Any] = {"name": "sim", "type": "opcua", "endpoint": endpoint, "interval": 0.2, "timeout": 2}
    fields.update(kw)
    return OpcUaSource(nodes=nodes if nodes is not None else example_nodes(), **fields)


def rows(batch: pa.RecordBatch) -> dict[str, tuple[str | None, int, int]]:
    """alias -> (column set, quality, time ns); the last row wins."""
    streams = batch.column("stream").cast(pa.string()).to_pylist()
    cols = value_types(batch).to_pylist()
    quality = batch.column("quality").to_pylist()
    times = batch.column("time").cast(pa.int64()).to_pylist()
    return {s: (c, q, t) for s, c, q, t in zip(streams, cols, quality, times, strict=True)}


async def collect(connector: OpcUaStreamingConnector, want: set[str]) -> dict[str, Any]:
    """Rows from stream() until every alias in ``want`` has been seen (within 5 s)."""
    seen: dict[str, Any] = {}
    async with asyncio.timeout(5):
        async for batch in connector.stream():
            seen.update(rows(batch))
            if want <= seen.keys():
                return seen
    raise AssertionError("stream ended")


async def rows_of_one_poll(cfg: OpcUaSource) -> int:
    """Open a poll-mode source, read once, close: the number of rows."""
    connector = make_opcua_connector(cfg)
    await connector.open()
    try:
        return (await connector.poll()).num_rows
    finally:
        await connector.close()


def assert_good_and_typed(seen: dict[str, tuple[str | None, int, int]]) -> None:
    now = time.time_ns()
    for alias, column in ALIAS_COLUMN.items():
        got_column, quality, t = seen[alias]
        assert (alias, got_column, quality) == (alias, column, Quality.GOOD)
        assert abs(now - t) < 5 * 10**9, f"{alias}: source timestamp {t} is not close to now"


@live
async def test_subscribe_delivers_typed_batches(sim: OpcUaSimulator) -> None:
    connector = make_opcua_connector(source(sim.endpoint))
    assert isinstance(connector, OpcUaStreamingConnector)
    await connector.open()
    try:
        assert connector.status.last_error is None
        seen = await collect(connector, set(ALIAS_COLUMN))
        assert_good_and_typed(seen)
        # Values keep flowing after the initial ones, as later publish notifications.
        batches = connector.status.batches_read
        await collect(connector, {"/plant1/line1/press1/pressure"})
        assert connector.status.batches_read > batches
        assert connector.status.tag_errors == {}
    finally:
        await connector.close()


@live
async def test_poll_reads_every_node(sim: OpcUaSimulator) -> None:
    nodes = [*example_nodes(),
             {"node_id": "nsu=urn:sitewise-edge:simulator;s=Oven1.State", "alias": "/nsu/oven1/state"},
             {"node_id": "ns=2;s=Press1.Temperature", "alias": "/forced/press1/temperature", "type": "string"}]
    connector = make_opcua_connector(source(sim.endpoint, nodes, mode="poll"))
    assert isinstance(connector, OpcUaPollingConnector)
    await connector.open()
    try:
        batch = await connector.poll()
        assert batch.num_rows == len(nodes)
        seen = rows(batch)
        assert_good_and_typed(seen)
        assert seen["/nsu/oven1/state"][:2] == ("integer", Quality.GOOD)
        assert seen["/forced/press1/temperature"][:2] == ("string", Quality.GOOD)
        assert (await connector.poll()).num_rows == len(nodes)
        assert connector.status.values_read == 2 * len(nodes)
    finally:
        await connector.close()


@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_missing_node_is_bad_and_others_flow(sim: OpcUaSimulator, mode: str) -> None:
    connector = make_opcua_connector(source(sim.endpoint, [*example_nodes(), MISSING], mode=mode))
    await connector.open()
    try:
        message = "node ns=2;s=Press9.Temperature does not exist (BadNodeIdUnknown)"
        assert connector.status.tag_errors == {MISSING["alias"]: message}
        if isinstance(connector, OpcUaStreamingConnector):
            seen = await collect(connector, {MISSING["alias"], *ALIAS_COLUMN})
        else:
            seen = rows(await connector.poll())
            later = rows(await connector.poll())
            assert MISSING["alias"] not in later  # one BAD row per open, not one per poll
            assert set(later) == set(ALIAS_COLUMN)
        assert seen[MISSING["alias"]][:2] == (None, Quality.BAD)
        assert_good_and_typed(seen)
    finally:
        await connector.close()


@live
async def test_unreachable_endpoint_fails_fast() -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"  # nothing listens there
    connector = make_opcua_connector(source(endpoint))
    started = time.monotonic()
    with pytest.raises(ConnectorError, match=r"source 'sim' \(opc\.tcp://127\.0\.0\.1:\d+\): cannot connect") as err:
        await connector.open()
    assert time.monotonic() - started < 2
    assert (err.value.source, err.value.endpoint) == ("sim", endpoint)
    assert "cannot connect" in (connector.status.last_error or "")
    await connector.close()  # never raises, also after a failed open
    await connector.close()


@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_server_stop_raises_connector_error(mode: str) -> None:
    simulator = OpcUaSimulator(port=0, update_interval=0.2)
    await simulator.start()
    connector = make_opcua_connector(source(simulator.endpoint, example_nodes()[:3], mode=mode, timeout=1))
    try:
        await connector.open()
        if isinstance(connector, OpcUaStreamingConnector):
            first = asyncio.Event()

            async def consume() -> None:
                async for _ in connector.stream():
                    first.set()

            task = asyncio.create_task(consume())
            async with asyncio.timeout(5):
                await first.wait()
            await simulator.stop()
            with pytest.raises(ConnectorError, match="connection lost") as err:
                async with asyncio.timeout(5):
                    await task
        else:
            await connector.poll()
            await simulator.stop()
            with pytest.raises(ConnectorError, match=r"source 'sim' .*(connection lost|read failed)") as err:
                async with asyncio.timeout(5):
                    await connector.poll()
        assert connector.status.last_error == str(err.value)
    finally:
        await connector.close()
        await simulator.stop()


@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_hung_server_is_detected(frozen_proxy: FreezingProxy, mode: str) -> None:
    """A server that stops answering without closing the socket: the keep-alive (a probe every second,
    answered within a second) notices within 3 s, well before the 5 s request timeout; close() is immediate."""
    connector = make_opcua_connector(source(frozen_proxy.endpoint, example_nodes()[:3], mode=mode, timeout=5))
    await connector.open()
    try:
        if isinstance(connector, OpcUaStreamingConnector):
            await collect(connector, {n["alias"] for n in example_nodes()[:3]})
            frozen_proxy.frozen.set()
            frozen = time.monotonic()
            with pytest.raises(ConnectorError, match="connection lost"):
                async with asyncio.timeout(5):
                    await collect(connector, {"never"})
        else:
            await connector.poll()
            frozen_proxy.frozen.set()
            frozen = time.monotonic()
            with pytest.raises(ConnectorError, match="connection lost"):
                async with asyncio.timeout(5):
                    while True:
                        await connector.poll()
        assert time.monotonic() - frozen < 3.0
    finally:
        started = time.monotonic()
        await connector.close()
        assert time.monotonic() - started < 0.5


@live
async def test_close_is_bounded_on_a_hung_server(frozen_proxy: FreezingProxy) -> None:
    """Shutting down while the server hangs and before the keep-alive noticed: CloseSession waits 2 s at most."""
    connector = make_opcua_connector(source(frozen_proxy.endpoint, example_nodes()[:3], timeout=5, keepalive=30))
    await connector.open()
    frozen_proxy.frozen.set()
    started = time.monotonic()
    await connector.close()
    assert time.monotonic() - started < 2.5


@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_invalid_nodes_are_tag_errors(sim: OpcUaSimulator, mode: str) -> None:
    nodes = [*example_nodes()[:2],
             {"node_id": "i=abc", "alias": "/bad/id"},
             {"node_id": "ns=2;s=Press1", "alias": "/bad/folder"},
             {"node_id": "nsu=urn:nowhere;s=X", "alias": "/bad/namespace"}]
    connector = make_opcua_connector(source(sim.endpoint, nodes, mode=mode))
    await connector.open()
    try:
        errors = connector.status.tag_errors
        assert set(errors) == {"/bad/id", "/bad/folder", "/bad/namespace"}
        assert errors["/bad/id"].startswith("node i=abc is not a valid node id")
        # poll mode reads the node class; subscribe mode has CreateMonitoredItems' verdict (no extra read)
        folder = {"poll": "(node class Object)", "subscribe": "(BadAttributeIdInvalid)"}[mode]
        assert errors["/bad/folder"] == f"node ns=2;s=Press1 is not a variable {folder}"
        assert "namespace 'urn:nowhere' is not on the server" in errors["/bad/namespace"]
        if isinstance(connector, OpcUaStreamingConnector):
            seen = await collect(connector, {*errors, example_nodes()[0]["alias"]})
        else:
            seen = rows(await connector.poll())
        assert {a: seen[a][:2] for a in errors} == dict.fromkeys(errors, (None, Quality.BAD))
        assert seen[example_nodes()[0]["alias"]][:2] == ("double", Quality.GOOD)
    finally:
        await connector.close()


@live
async def test_close_ends_stream(sim: OpcUaSimulator) -> None:
    connector = make_opcua_connector(source(sim.endpoint, example_nodes()[:2]))
    await connector.open()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in connector.stream():
            first.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await first.wait()
        await connector.close()
        await task  # ends without an error


@live
@pytest.mark.parametrize("mode", ["SignAndEncrypt", "Sign"])
@pytest.mark.parametrize("pin", [False, True], ids=["server-cert-in-trust-list", "server-cert-pinned"])
async def test_secure_connection(secure_sim: OpcUaSimulator, client_cert: tuple[Path, Path], mode: str,
                                 pin: bool, tmp_path: Path) -> None:
    cert, key = client_cert
    assert secure_sim.server_certificate is not None
    trust = {"server_certificate": secure_sim.server_certificate} if pin else {"trust_list": tmp_path}
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "sim.der").write_bytes(secure_sim.server_certificate.read_bytes())
    cfg = source(secure_sim.endpoint, example_nodes()[:4], security_policy="Basic256Sha256", security_mode=mode,
                 certificate=cert, private_key=key, **trust)
    connector = make_opcua_connector(cfg)
    await connector.open()
    try:
        assert isinstance(connector, OpcUaStreamingConnector)
        seen = await collect(connector, {n["alias"] for n in example_nodes()[:4]})
        assert all(q == Quality.GOOD for _, q, _ in seen.values())
    finally:
        await connector.close()


@live
async def test_secure_connection_pem_files(secure_sim: OpcUaSimulator, client_cert: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    """PEM or DER is told by content, not by file name (``.crt`` and ``.key`` are common)."""
    cert, key = client_cert
    pem_cert, der_key = tmp_path / "client.crt", tmp_path / "client.key"
    pem_cert.write_bytes(x509.load_der_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.PEM))
    der_key.write_bytes(serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cfg = source(secure_sim.endpoint, example_nodes()[:2], mode="poll", security_policy="Basic256Sha256",
                 security_mode="SignAndEncrypt", certificate=pem_cert, private_key=der_key,
                 server_certificate=secure_sim.server_certificate)
    assert await rows_of_one_poll(cfg) == 2


@live
@pytest.mark.parametrize("password", ["s3cret", "wrong"])
async def test_user_name_and_password(secure_sim: OpcUaSimulator, client_cert: tuple[Path, Path],
                                      password: str) -> None:
    cert, key = client_cert
    cfg = source(secure_sim.endpoint, example_nodes()[:2], mode="poll", security_policy="Basic256Sha256",
                 security_mode="SignAndEncrypt", certificate=cert, private_key=key, username="operator",
                 password=password, server_certificate=secure_sim.server_certificate)
    if password == "wrong":
        connector = make_opcua_connector(cfg)
        with pytest.raises(ConnectorError, match="connection refused: BadUserAccessDenied"):
            await connector.open()
        assert password not in (connector.status.last_error or "")
        return
    assert await rows_of_one_poll(cfg) == 2


@live
async def test_security_against_server_without_it(sim: OpcUaSimulator, client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    cfg = source(sim.endpoint, security_policy="Basic256Sha256", security_mode="SignAndEncrypt",
                 certificate=cert, private_key=key)
    with pytest.raises(ConnectorError, match="offers no endpoint with security policy Basic256Sha256 and mode "
                                             "SignAndEncrypt"):
        await make_opcua_connector(cfg).open()


@live
async def test_no_security_against_secure_only_server(secure_sim: OpcUaSimulator) -> None:
    with pytest.raises(ConnectorError, match=r"source 'sim' .*offers no endpoint with security policy None"):
        await make_opcua_connector(source(secure_sim.endpoint)).open()


@live
@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, r"certificate file '.*client\.der' does not exist", id="missing"),
        pytest.param(b"not a certificate", r"certificate file '.*client\.der' is not an unencrypted PEM or DER "
                                           r"certificate", id="garbage"),
    ],
)
async def test_bad_certificate_file(secure_sim: OpcUaSimulator, client_cert: tuple[Path, Path], tmp_path: Path,
                                    content: bytes | None, message: str) -> None:
    _, key = client_cert
    if content is not None:
        (tmp_path / "client.der").write_bytes(content)
    cfg = source(secure_sim.endpoint, security_policy="Basic256Sha256", security_mode="Sign",
                 certificate=tmp_path / "client.der", private_key=key)
    connector = make_opcua_connector(cfg)
    with pytest.raises(ConnectorError, match=message) as err:
        await connector.open()
    assert connector.status.last_error == str(err.value)


@live
async def test_absolute_certificate_paths_from_a_file_connect(secure_sim: OpcUaSimulator,
                                                              client_cert: tuple[Path, Path], tmp_path: Path) -> None:
    """validate used to accept absolute certificate paths and turn them into None: every open then failed."""
    cert, key = client_cert
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(yaml.safe_dump({"sources": [{
        "name": "sim", "type": "opcua", "endpoint": secure_sim.endpoint, "mode": "poll", "timeout": "2s",
        "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
        "certificate": str(cert.resolve()), "private_key": str(key.resolve()),
        "server_certificate": str(secure_sim.server_certificate), "nodes": example_nodes()[:2]}]}))
    cfg = load_config(config_file, env={}).sources[0]
    assert isinstance(cfg, OpcUaSource)
    assert await rows_of_one_poll(cfg) == 2


@live
async def test_values_a_slow_consumer_misses_are_counted(sim: OpcUaSimulator) -> None:
    connector = OpcUaStreamingConnector(source(sim.endpoint), queue_batches=1, max_buffered_rows=1)
    await connector.open()
    try:
        # nobody iterates stream(): the queue fills with one batch, then the pending rows are dropped
        await eventually(lambda: connector.status.values_dropped > 0, within=5)
        assert connector.status.as_dict()["valuesDropped"] == connector.status.values_dropped
    finally:
        await connector.close()
