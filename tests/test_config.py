import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sitewise_edge.config import load_config, parse_config, parse_duration, parse_size
from sitewise_edge.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
MINIMAL_MODBUS = {"name": "plc", "type": "modbus", "host": "127.0.0.1",
                  "tags": [{"alias": "/a", "table": "holding", "address": 1, "type": "int16"}]}
MINIMAL_OPCUA = {"name": "press", "type": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
                 "nodes": [{"node_id": "ns=2;s=Press1.Temperature", "alias": "/t"}]}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate(path: Path) -> None:
    cfg = load_config(path, env={})
    assert cfg.gateway.name


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"gateway.yaml", "cloud.yaml"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 0.5), ("5s", 5), ("1m", 60), ("2h", 7200), ("30d", 2592000), ("1w", 604800), (3, 3.0)],
)
def test_durations(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("512MiB", 512 * 2**20), ("20GiB", 20 * 2**30), ("10GB", 10**10)])
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def issues_of(doc: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(doc, env=env or {})
    return [str(i) for i in err.value.issues]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"sources": [MINIMAL_MODBUS, {**MINIMAL_MODBUS, "name": "b", "tags": [
            {"alias": "/b", "table": "holding", "address": 1, "type": "int16"},
            {"alias": "/c", "table": "holding", "address": 2, "type": "int16"},
            {"alias": "/d", "table": "holding", "address": 3, "type": "int16"},
            {"alias": "/e", "table": "holding", "address": 4, "type": "int33"}]}]},
         "sources[1].tags[3].type: unknown data type 'int33'; expected one of int16, uint16, int32"),
        ({"sources": [{"name": "x", "type": "profinet"}]}, "sources[0].type: unknown type 'profinet'"),
        ({"sources": [{"name": "x"}]}, "sources[0].type: required key 'type' is missing"),
        ({"sources": [{**MINIMAL_MODBUS, "interval": "soon"}]}, "sources[0].interval: expected a duration"),
        ({"sources": [{**MINIMAL_MODBUS, "port": 70000}]}, "sources[0].port: "),
        ({"sources": [{**MINIMAL_MODBUS, "tags": [{"alias": "/a", "table": "coil", "address": 1, "type": "int16"}]}]},
         "sources[0].tags[0]: table coil holds bits: type must be bool"),
        ({"sources": [{"name": "o", "type": "opcua", "endpoint": "http://x", "nodes": [
            {"node_id": "ns=2;s=A", "alias": "/a"}]}]}, "sources[0].endpoint: endpoint 'http://x' must start"),
        ({"sources": [{"name": "o", "type": "opcua", "endpoint": "opc.tcp://h:4840", "nodes": [
            {"node_id": "Press1.Temperature", "alias": "/a"}]}]}, "sources[0].nodes[0].node_id: malformed node id"),
        ({"sources": [{"name": "o", "type": "opcua", "endpoint": "opc.tcp://h:4840", "security_policy":
                       "Basic256Sha256", "security_mode": "Sign", "certificate": "c.der",
                       "nodes": [{"node_id": "i=1", "alias": "/a"}]}]},
         "sources[0]: certificate and private_key go together: give both, or neither to use the certificate "
         "generated in the data directory"),
        ({"sources": [MINIMAL_MODBUS, {**MINIMAL_MODBUS, "name": "b"}]},
         "sources[1].tags[0].alias: alias '/a' is already used by sources[0].tags[0]"),
        ({"storage": {"max_disk": "lots"}}, "storage.max_disk: expected a size"),
        ({"api": {"host": "0.0.0.0"}}, "api: host '0.0.0.0' exposes the API beyond this machine: set token"),
        ({"gatway": {}}, "gatway: unknown key"),
        ({"publishers": [{"name": "c", "type": "sitewise", "endpoint": "x"}]}, "publishers[0].endpoint: unknown key"),
        # closed values (Literal types) keep the messages they had as checked strings
        ({"sources": [{**MINIMAL_OPCUA, "mode": "push"}]},
         "sources[0].mode: unknown mode 'push'; expected one of subscribe, poll"),
        ({"sources": [{**MINIMAL_OPCUA, "timestamp": "device"}]},
         "sources[0].timestamp: unknown timestamp 'device'; expected one of source, server"),
        ({"sources": [{**MINIMAL_OPCUA, "security_mode": "Encrypt"}]},
         "sources[0].security_mode: unknown security mode 'Encrypt'; expected one of None, Sign, SignAndEncrypt"),
        ({"sources": [{**MINIMAL_OPCUA, "security_policy": "Basic128"}]},
         "sources[0].security_policy: unknown security policy 'Basic128'; expected one of None, Basic256Sha256, "),
        ({"sources": [{**MINIMAL_OPCUA, "nodes": [{"node_id": "i=1", "alias": "/a", "type": "float"}]}]},
         "sources[0].nodes[0].type: unknown value type 'float'; expected one of double, integer, string, boolean"),
        ({"sources": [{**MINIMAL_MODBUS, "tags": [{"alias": "/a", "table": "holdings", "address": 1}]}]},
         "sources[0].tags[0].table: unknown register table 'holdings'; expected one of holding, input, coil, "),
        ({"sources": [{**MINIMAL_MODBUS, "tags": [{"alias": "/a", "table": "holding", "address": 1,
                                                   "word_order": "BACD"}]}]},
         "sources[0].tags[0].byte_order: unknown byte order 'BACD'; expected one of ABCD, CDAB, BADC, DCBA"),
        ({"sources": [{**MINIMAL_MODBUS, "tags": [{"alias": "/a", "table": "holding", "address": 1, "type": 16}]}]},
         "sources[0].tags[0].type: Input should be a valid string (got 16)"),
        ({"sources": [MINIMAL_MODBUS, {**MINIMAL_OPCUA, "nodes": [{"node_id": "i=1", "alias": "/a"}]}]},
         "sources[1].nodes[0].alias: alias '/a' is already used by sources[0].tags[0]"),
    ],
    ids=["bad-modbus-type", "unknown-source-type", "missing-type", "bad-duration", "bad-port", "coil-not-bool",
         "opcua-endpoint", "node-id", "security-without-cert", "duplicate-alias", "bad-size", "exposed-api",
         "unknown-section", "unknown-publisher-key", "opcua-mode", "opcua-timestamp", "opcua-security-mode",
         "opcua-security-policy", "opcua-value-type", "modbus-table", "modbus-word-order", "modbus-type-not-a-string",
         "duplicate-alias-across-connectors"],
)
def test_config_errors_name_the_key(doc: dict, expected: str) -> None:
    issues = issues_of(doc)
    assert any(i.startswith(expected) for i in issues), issues


def test_every_error_is_reported_at_once() -> None:
    issues = issues_of({"storage": {"retention": "x", "max_disk": "y"}, "api": {"port": -1}})
    assert len(issues) == 3


def test_environment_substitution() -> None:
    doc = yaml.safe_load("api: {port: '${PORT:-9000}', token: '${TOKEN}', host: 127.0.0.1}")
    cfg = parse_config(doc, env={"TOKEN": "s3cret"})
    assert cfg.api.port == 9000 and cfg.api.token == "s3cret"
    assert "s3cret" not in repr(cfg)  # secrets stay out of reprs and logs
    assert issues_of(doc) == ["api.token: environment variable TOKEN is not set"]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("gateway:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(p)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sitewise_edge", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_validate_command_ok() -> None:
    out = run_cli("validate", "-c", str(ROOT / "examples" / "gateway.yaml"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "ok"
    assert "device 'line1-plc' (unit 1), group 'default' every 1 s: 8 tags in 7 requests" in out.stdout


def test_validate_command_reports_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"sources": [{**MINIMAL_MODBUS, "tags": [
        {"alias": "/a", "table": "holding", "address": 1, "type": "int33"}]}], "storage": {"retention": "x"}}))
    out = run_cli("validate", "-c", str(p))
    assert out.returncode == 2
    assert "sources[0].tags[0].type: unknown data type 'int33'" in out.stderr
    assert "storage.retention: expected a duration" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_command_missing_file(tmp_path: Path) -> None:
    out = run_cli("validate", "-c", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "cannot read the file" in out.stderr


def test_a_misspelt_secret_key_does_not_print_the_secret() -> None:
    issues = issues_of({"api": {"tokn": "hunter2"}})
    assert issues == ["api.tokn: unknown key"]


def test_an_unknown_source_type_lists_the_registered_ones() -> None:
    assert issues_of({"sources": [{"name": "x", "type": "profinet"}]}) == [
        "sources[0].type: unknown type 'profinet'; expected one of modbus, opcua"]


def test_word_order_aliases_are_normalised_at_load() -> None:
    orders = ("ABCD", "CDAB", "big-endian", "little-endian", "little", "byteSwap", "byteWordSwap", "noSwap")
    tags = [{"alias": f"/{o}", "table": "holding", "address": 2 * i, "type": "int32", "word_order": o}
            for i, o in enumerate(orders)]
    cfg = parse_config({"sources": [{**MINIMAL_MODBUS, "tags": tags}]}, env={})
    assert [t.byte_order for t in cfg.sources[0].tags] == ["ABCD", "CDAB", "ABCD", "CDAB", "CDAB", "BADC", "DCBA",
                                                          "ABCD"]


def test_certificate_paths_absolute_as_written_relative_from_the_file(tmp_path: Path) -> None:
    """An absolute certificate path used to come out as None: validate said ok, every open failed."""
    cert = tmp_path / "pki" / "client-cert.der"
    config_file = tmp_path / "conf" / "gateway.yaml"
    config_file.parent.mkdir()
    config_file.write_text(yaml.safe_dump({"sources": [{
        **MINIMAL_OPCUA, "security_policy": "Basic256Sha256", "security_mode": "Sign",
        "certificate": str(cert), "private_key": "keys/client-key.pem"}]}))
    source = load_config(config_file, env={}).sources[0]
    assert source.certificate == cert
    assert source.private_key == (tmp_path / "conf" / "keys" / "client-key.pem").resolve()
    assert source.server_certificate is None


def test_core_configuration_imports_no_connector_until_it_validates_sources() -> None:
    """Core finds the connectors through their entry points; validating imports their config models
    only, not the protocol libraries."""
    script = (
        "import sys\n"
        "from sitewise_edge.config import parse_config\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'connectors'], 'core imported a connector'\n"
        f"cfg = parse_config({{'sources': [{MINIMAL_MODBUS!r}, {MINIMAL_OPCUA!r}]}}, env={{}})\n"
        "assert [type(s).__module__ for s in cfg.sources] == ['connectors.modbus.config', 'connectors.opcua.config']\n"
        "assert 'asyncua' not in sys.modules and 'pymodbus' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
