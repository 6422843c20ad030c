"""The ``sitewise-edge`` command.

    sitewise-edge run -c gateway.yaml          run a gateway
    sitewise-edge validate -c gateway.yaml     check a configuration (and its asset models)
    sitewise-edge status -c gateway.yaml       the running gateway's overview in a terminal
    sitewise-edge tls generate --host NAME     a self-signed certificate and key for api.tls
    sitewise-edge demo [--port 8080]           simulators + gateway + local SiteWise endpoint
    sitewise-edge simulate opcua|modbus        one simulator on its own (modbus: --framer rtu, --serial PORT)
    sitewise-edge models pull --out DIR        copy asset models and assets from SiteWise (or a gateway)
    sitewise-edge deadletter list|replay -c gateway.yaml   what a SiteWise destination refused
    sitewise-edge opcua cert [-c gateway.yaml]      the OPC UA client certificate (made if missing), trust list
    sitewise-edge opcua browse ENDPOINT [PATH]      an OPC UA server's address space, to write node lists

Exit status: 0 ok, 2 a configuration or model error, 1 any other failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sitewise_edge.config import Config, load_config, redact
from sitewise_edge.errors import ConfigError, ModelError, SitewiseEdgeError
from sitewise_edge.logs import FORMATS, LogFormat, setup_logging

if TYPE_CHECKING:
    from asset_models.registry import Registry
    from connectors.opcua.config import OpcUaSource

log = logging.getLogger("sitewise_edge")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXIT_CONFIG = 2


def _setup_logging(level: str, fmt: LogFormat = "text") -> None:
    setup_logging(level, fmt)


def _load_error(exc: ConfigError | ModelError) -> int:
    """Print a configuration or model error the user can act on; the exit status for it."""
    if isinstance(exc, ConfigError):
        _print_config_error(exc)
    else:
        print(f"models: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def _print_config_error(exc: ConfigError) -> None:
    print(f"{exc.source or 'configuration'}: {len(exc.issues)} error(s)", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {redact(str(issue))}", file=sys.stderr)


# --- validate ---------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """Every problem in one run: the configuration's, the models', the expressions' and the aliases'."""
    from asset_models.metrics import MetricPlan
    from asset_models.registry import Registry
    from asset_models.transforms import TransformPlan
    from sitewise_edge.runtime.models import load_registry

    problems = 0
    config: Config | None = None
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _print_config_error(exc)
        problems += len(exc.issues)
    # the models are checked even when the configuration is not valid, as far as its models section names them
    paths = [m.path for m in config.models] if config is not None else _model_paths(args.config)
    registry: Registry | None = None
    try:
        registry = load_registry(paths) if paths else Registry.empty()
    except ModelError as exc:
        problems += _print_model_error(exc)
    if registry is not None:
        for build in (TransformPlan.build, MetricPlan.build):  # each compiles every expression of its kind
            try:
                build(registry)
            except ModelError as exc:
                problems += _print_model_error(exc)
    if config is not None and registry is not None:
        for problem in _alias_problems(config, registry):
            print(f"{args.config}: {problem}", file=sys.stderr)
            problems += 1
    if problems:
        print(f"{problems} problem(s): nothing was started", file=sys.stderr)
        return EXIT_CONFIG
    assert config is not None and registry is not None
    for source in config.sources:
        lines = source.plan_lines()
        if lines:
            print(f"source {source.name!r}:")
            print("\n".join(f"  {line}" for line in lines))
    for line in _childless_hierarchies(registry):
        print(f"note: {line}", file=sys.stderr)
    unmapped = [a for a in _source_aliases(config) if registry.property_by_alias(a) is None]
    if unmapped and config.models:
        print(f"note: {len(unmapped)} source aliases belong to no asset property and will be stored as "
              f"data streams: {', '.join(unmapped[:5])}{' ...' if len(unmapped) > 5 else ''}", file=sys.stderr)
    print("ok")
    return 0


def _print_model_error(exc: ModelError) -> int:
    """Print a model error; how many problems it holds."""
    from asset_models.errors import ModelInvalid

    print(f"models: {exc}", file=sys.stderr)
    return len(exc.problems) if isinstance(exc, ModelInvalid) else 1


def _model_paths(config_path: Path) -> list[Path]:
    """``models[].path`` of a configuration that did not validate, read as far as it can be (else none)."""
    import yaml

    from sitewise_edge.config import resolve_path

    try:
        data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return []
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return []
    return [resolve_path(Path(m["path"]), Path(config_path).parent) for m in models
            if isinstance(m, dict) and isinstance(m.get("path"), str) and "${" not in m["path"]]


def _alias_problems(config: Config, registry: Registry) -> list[str]:
    """A source alias naming a property that is not a measurement: its values would be refused at run time."""
    out = []
    for i, source in enumerate(config.sources):
        key, items = source.aliased_items()
        for j, item in enumerate(items):
            ref = registry.property_by_alias(item.alias)
            if ref is not None and ref.kind != "measurement":
                out.append(f"sources[{i}].{key}[{j}].alias: {item.alias!r} is the alias of {ref.kind} "
                           f"'{ref.property_name}' of asset '{ref.asset_name}': a source writes measurements only")
    return out


def _load_registry(config: Config) -> Registry:
    from asset_models.registry import Registry
    from sitewise_edge.runtime.models import load_registry

    return load_registry([m.path for m in config.models]) if config.models else Registry.empty()


def _childless_hierarchies(registry: Registry) -> list[str]:
    """Metrics over a hierarchy that holds no child asset: they compute nothing (often a lost association)."""
    out = []
    for asset in registry.assets():
        model = registry.model(asset.model_id)
        for prop in model.properties:
            for hid in sorted({v.hierarchy_id for v in prop.variables if v.hierarchy_id is not None}):
                hierarchy = model.hierarchy(hid)
                if hierarchy is not None and not registry.children(asset.id, hierarchy.id):
                    out.append(f"asset '{asset.name}' property '{prop.name}' reads hierarchy '{hierarchy.name}', "
                               "which holds no child asset: it computes nothing (associations missing?)")
    return out


def _source_aliases(config: Config) -> list[str]:
    return [alias for s in config.sources for alias in s.aliases()]


# --- run --------------------------------------------------------------------------------------


async def _until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    hits = 0

    def on_signal(signame: str) -> None:
        nonlocal hits
        hits += 1
        if hits == 1:
            log.info("%s received: draining and stopping (send it again to stop at once)", signame)
            stop.set()
        else:
            log.warning("%s received again: exiting now; everything accepted is already in the WAL", signame)
            os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    await main(stop)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    return _run_gateways(lambda: [config])


def _run_gateways(configs: Callable[[], list[Config]], before: Callable[[], Awaitable[list[object]]] | None = None,
                  announce: Callable[[list[object]], None] | None = None) -> int:
    from sitewise_edge.runtime import Gateway, dashboard_url

    async def main(stop: asyncio.Event) -> None:
        helpers = await before() if before else []
        gateways: list[Gateway] = []
        try:
            for config in configs():
                gw = Gateway(config)
                await gw.start()
                gateways.append(gw)
            main_gw = gateways[-1]
            assert main_gw.api_port is not None
            if announce:
                announce([*helpers, *gateways])
            api = main_gw.config.api
            print(f"Dashboard: {dashboard_url(api.host, main_gw.api_port, api.tls is not None)}", flush=True)
            await stop.wait()
        finally:
            for gw in reversed(gateways):
                await gw.stop()
            for h in reversed(helpers):
                await h.stop()  # type: ignore[attr-defined]

    try:
        asyncio.run(_until_signal(main))
    except (ConfigError, ModelError) as exc:
        return _load_error(exc)
    except SitewiseEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# --- demo -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cmd_demo(args: argparse.Namespace) -> int:
    from sitewise_edge.simulators.modbus import ModbusSimulator
    from sitewise_edge.simulators.opcua import OpcUaSimulator

    data_dir = Path(args.data_dir).resolve()
    ports = {"opcua": free_port(), "modbus": free_port(), "cloud": free_port()}
    env = {
        **os.environ,
        "OPCUA_ENDPOINT": f"opc.tcp://127.0.0.1:{ports['opcua']}",
        "MODBUS_HOST": "127.0.0.1",
        "MODBUS_PORT": str(ports["modbus"]),
        "CLOUD_PORT": str(ports["cloud"]),
        "CLOUD_URL": f"http://127.0.0.1:{ports['cloud']}",
        "GATEWAY_PORT": str(args.port),
        "GATEWAY_DATA_DIR": str(data_dir / "gateway"),
        "CLOUD_DATA_DIR": str(data_dir / "cloud"),
    }

    def configs() -> list[Config]:
        return [load_config(EXAMPLES / "cloud.yaml", env), load_config(EXAMPLES / "gateway.yaml", env)]

    async def simulators() -> list[object]:
        opcua = OpcUaSimulator(port=ports["opcua"])
        modbus = ModbusSimulator(port=ports["modbus"])
        await opcua.start()
        await modbus.start()
        return [opcua, modbus]

    def announce(_: list[object]) -> None:
        print(f"OPC UA simulator:  {env['OPCUA_ENDPOINT']}", flush=True)
        print(f"Modbus simulator:  127.0.0.1:{ports['modbus']}", flush=True)
        print(f"SiteWise endpoint: {env['CLOUD_URL']}/ (the local ingestion endpoint the gateway forwards to)",
              flush=True)
        print(f"Data:              {data_dir}", flush=True)

    return _run_gateways(configs, simulators, announce)


# --- simulate ---------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> None:
        sim: object
        if args.protocol == "opcua":
            from sitewise_edge.simulators.opcua import OpcUaSimulator

            sim = OpcUaSimulator(host=args.host, port=args.port or 4840, security=args.secure,
                                 policies=("Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"))
            await sim.start()
            print(f"OPC UA simulator serving {sim.endpoint}", flush=True)
            if args.secure:
                print(f"  secured too (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss); its certificate: "
                      f"{sim.server_certificate}", flush=True)
        else:
            from sitewise_edge.simulators.modbus import ModbusSimulator

            sim = ModbusSimulator(host=args.host, port=args.port or 5020, unit_id=args.unit_id, framer=args.framer,
                                  serial_port=args.serial, baudrate=args.baudrate)
            await sim.start()
            print(f"Modbus simulator serving {sim.where} unit {args.unit_id}", flush=True)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(_until_signal(main))
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


# --- models pull ------------------------------------------------------------------------------


def cmd_models_pull(args: argparse.Namespace) -> int:
    from sitewise_edge.models_pull import make_client, pull

    try:
        client = make_client(args.endpoint_url, args.region)
        result = pull(client, args.out, args.asset_model_id or ())
    except SitewiseEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"pulled {result.models} asset models, {result.assets} assets and {result.associations} associations "
          f"into {args.out}")
    return 0


# --- deadletter -------------------------------------------------------------------------------


def cmd_deadletter(args: argparse.Namespace) -> int:
    """List or replay dead letters: through the running gateway's API, or in the data directory when the
    gateway is stopped (a replay is then sent when the gateway starts). See sitewise_edge/publish/deadletter_cli.py."""
    from sitewise_edge.publish.deadletter_cli import deadletter_command

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    return deadletter_command(args, config)


# --- opcua cert, opcua browse ------------------------------------------------------------------


def _opcua_source(args: argparse.Namespace) -> OpcUaSource:
    """The source the command acts as: a configuration's (``-c``, ``--source``), else one from the options.
    Raises ConfigError (printed by the caller) for a file or options that do not validate."""
    from pydantic import ValidationError

    from connectors.opcua.config import PKI_SUBDIR, OpcUaSource
    from sitewise_edge.config import ConfigIssue

    endpoint = getattr(args, "endpoint", None)
    if args.config is not None:
        config = load_config(args.config)
        sources = [s for s in config.sources if isinstance(s, OpcUaSource)]
        names = ", ".join(s.name for s in sources) or "none"
        chosen = [s for s in sources if args.source in (None, s.name)]
        if not chosen or (args.source is None and len(chosen) > 1):
            what = f"no OPC UA source {args.source!r}" if args.source else "several OPC UA sources: say which"
            raise ConfigError([ConfigIssue("--source", f"{what} (the file has {names})")], str(args.config))
        source = chosen[0]
        return source.model_copy(update={"endpoint": endpoint}) if endpoint else source
    fields: dict[str, object] = {
        "name": "cli", "type": "opcua", "endpoint": endpoint or "opc.tcp://localhost:4840",
        "browse": {"include": ["/**"]}, "pki_dir": Path(args.data_dir).resolve() / PKI_SUBDIR,
    }
    for option in ("security_policy", "security_mode", "certificate", "private_key", "application_uri", "trust_list",
                   "username", "user_certificate", "user_private_key", "timeout"):
        value = getattr(args, option, None)
        if value is not None:
            fields[option] = value
    if getattr(args, "server_sha256", None):
        fields["server_certificate_sha256"] = args.server_sha256
    if getattr(args, "trust_any", False):
        fields["trust_any_server"] = True
    if getattr(args, "allow_deprecated", False):
        fields["allow_deprecated_policies"] = True
    if getattr(args, "password_env", None):
        if args.password_env not in os.environ:
            raise ConfigError([ConfigIssue("--password-env", f"environment variable {args.password_env} is not set")])
        fields["password"] = os.environ[args.password_env]
    try:
        return OpcUaSource.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError([ConfigIssue(".".join(str(p) for p in e["loc"]) or "options", e["msg"])
                           for e in exc.errors()], "options") from None


def _quiet_asyncua(args: argparse.Namespace) -> None:
    if args.log_level != "debug":  # asyncua logs tracebacks for failures the command reports in one line
        logging.getLogger("asyncua").setLevel(logging.CRITICAL)


def cmd_opcua_cert(args: argparse.Namespace) -> int:
    from connectors.opcua.security import PkiError
    from connectors.opcua.tool import certificate_report, trust_certificate
    from sitewise_edge.clock import SYSTEM_CLOCK

    try:
        source = _opcua_source(args)
        if args.trust is not None:
            print(f"trusted: {trust_certificate(source, args.trust)}")
        print("\n".join(certificate_report(source, SYSTEM_CLOCK)))
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_opcua_browse(args: argparse.Namespace) -> int:
    from connectors.opcua.tool import BrowseError, browse_tree, render
    from sitewise_edge.errors import ConnectorError

    _quiet_asyncua(args)
    positional = list(args.targets)
    args.endpoint = positional.pop(0) if positional and positional[0].startswith("opc.tcp://") else None
    path = positional.pop(0) if positional else "/"
    if positional:
        print(f"error: unexpected arguments {' '.join(positional)} (give ENDPOINT then PATH)", file=sys.stderr)
        return EXIT_CONFIG
    if args.endpoint is None and args.config is None:
        print("error: say which server: an endpoint (opc.tcp://host:4840) or -c gateway.yaml [--source NAME]",
              file=sys.stderr)
        return EXIT_CONFIG
    if args.depth < 1:
        print(f"error: --depth must be 1 or more, not {args.depth}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        source = _opcua_source(args)
        nodes = asyncio.run(browse_tree(source, path, args.depth))
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    except (ConnectorError, BrowseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print("\n".join(render(nodes)))
    variables = sum(1 for n in nodes if n.node_class == "Variable")
    print(f"{len(nodes)} nodes ({variables} variables) under {path}, {args.depth} level(s); select them with "
          f"browse: {{include: [\"{path.rstrip('/')}/**\"]}}", file=sys.stderr)
    return 0


# --- status, tls, version ----------------------------------------------------------------------


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("sitewise-edge")
    except PackageNotFoundError:
        return "unknown (not installed)"


def cmd_status(args: argparse.Namespace) -> int:
    from sitewise_edge.status import fetch_health, render

    url = args.url
    verify: bool | str = not args.insecure
    if url is None:
        if args.config is None:
            print("error: say which gateway: -c gateway.yaml or --url http://127.0.0.1:8080", file=sys.stderr)
            return EXIT_CONFIG
        try:
            api = load_config(args.config).api
        except ConfigError as exc:
            _print_config_error(exc)
            return EXIT_CONFIG
        host = "127.0.0.1" if api.host in ("0.0.0.0", "") else "::1" if api.host == "::" else api.host
        url = f"{'https' if api.tls else 'http'}://{f'[{host}]' if ':' in host else host}:{api.port}"
        if api.tls and verify:
            verify = str(api.tls.cert)  # a self-signed certificate is its own CA
    try:
        health = fetch_health(url, verify=verify)
    except SitewiseEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        import json

        print(json.dumps(health, indent=2))
    else:
        print(render(health, url))
    return 0 if health.get("status") != "unavailable" else 1


def cmd_tls_generate(args: argparse.Namespace) -> int:
    from sitewise_edge.clock import SYSTEM_CLOCK
    from sitewise_edge.tls import generate_self_signed

    names = args.host or [socket.gethostname()]
    try:
        cert, key = generate_self_signed(args.out, names, SYSTEM_CLOCK, args.days)
    except OSError as exc:
        print(f"error: cannot write into {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {cert} and {key} (self-signed, for {', '.join(names)}, {args.days} days). In the configuration:\n"
          f"api:\n  tls: {{cert: {cert.resolve()}, key: {key.resolve()}}}\n"
          f"Clients must trust {cert} (boto3: verify=\"{cert}\"; the AWS CLI: --ca-bundle {cert}).")
    return 0


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sitewise-edge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default=os.environ.get("SITEWISE_EDGE_LOG_FORMAT", "text"), choices=FORMATS,
                        help="text (default) or json: one JSON object per line (env SITEWISE_EDGE_LOG_FORMAT)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a gateway")
    p.add_argument("-c", "--config", required=True, type=Path)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a configuration file and its asset models")
    p.add_argument("-c", "--config", required=True, type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", help="the running gateway's overview in a terminal (sources, store, publishers)")
    p.add_argument("-c", "--config", type=Path, default=None, help="the gateway's configuration (finds its API)")
    p.add_argument("--url", default=None, help="or the API's address, e.g. https://gateway-line1:8443")
    p.add_argument("--insecure", action="store_true", help="HTTPS: accept a certificate no CA signed (self-signed)")
    p.add_argument("--json", action="store_true", help="print /health as JSON instead")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("tls", help="HTTPS certificates")
    tls = p.add_subparsers(dest="tls_command", required=True)
    p = tls.add_parser("generate", help="write a self-signed certificate and key (cert.pem, key.pem) for api.tls")
    p.add_argument("--out", type=Path, default=Path("tls"), help="folder to write them into (default ./tls)")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="a host name or address clients use to reach the gateway; repeatable")
    p.add_argument("--days", type=int, default=825, help="validity (default 825 days)")
    p.set_defaults(func=cmd_tls_generate)

    p = sub.add_parser("demo", help="run simulators, a gateway and a local SiteWise endpoint")
    p.add_argument("--port", type=int, default=8080, help="API and dashboard port (default 8080)")
    p.add_argument("--data-dir", default="./demo-data", help="where the demo keeps its data")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="serve the simulated plant over OPC UA or Modbus")
    p.add_argument("protocol", choices=["opcua", "modbus"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default 4840 (OPC UA) or 5020 (Modbus)")
    p.add_argument("--secure", action="store_true", help="OPC UA: offer the secured policies too (with a "
                                                         "certificate made at start; every client is trusted)")
    p.add_argument("--unit-id", type=int, default=1)
    p.add_argument("--framer", choices=["socket", "rtu"], default="socket",
                   help="Modbus: socket (Modbus TCP, default) or rtu (RTU frames over TCP)")
    p.add_argument("--serial", default=None, metavar="PORT", help="Modbus: serve serial RTU on this port instead")
    p.add_argument("--baudrate", type=int, default=19200, help="Modbus serial: default 19200")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("models", help="asset models and assets")
    models = p.add_subparsers(dest="models_command", required=True)
    p = models.add_parser("pull", help="write the asset models and assets of a SiteWise endpoint to files the "
                                       "gateway loads (credentials from the standard AWS chain)")
    p.add_argument("--endpoint-url", default=None, help="a gateway or other SiteWise endpoint (default: AWS)")
    p.add_argument("--region", default=None, help="AWS region (default: from the AWS configuration)")
    p.add_argument("--out", required=True, type=Path, help="folder to write the JSON files into")
    p.add_argument("--asset-model-id", action="append", metavar="ID",
                   help="pull this model (and the models its hierarchies hold) only; repeatable")
    p.set_defaults(func=cmd_models_pull)

    p = sub.add_parser("deadletter", help="list or replay the values a SiteWise destination refused (through the "
                                          "running gateway's API, else in its data directory)")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("-c", "--config", required=True, type=Path)
    p.add_argument("--publisher", default=None, help="only this destination")
    p.add_argument("--reason", default=None, help="a substring of the reason, e.g. ResourceNotFound")
    p.add_argument("--alias", default=None, help="a glob on the alias (asset:<assetId>/<propertyId> without one)")
    p.add_argument("--state", default=None, choices=["dead", "parked", "replay"])
    p.add_argument("--rewrite-alias", default=None, help="replay under this alias instead (needs --alias)")
    p.add_argument("--json", action="store_true", help="list: print the records as JSON")
    p.set_defaults(func=cmd_deadletter)

    p = sub.add_parser("opcua", help="OPC UA: the gateway's client certificate, browse a server")
    opcua = p.add_subparsers(dest="opcua_command", required=True)

    def source_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("-c", "--config", type=Path, default=None, help="act as a source of this configuration")
        q.add_argument("--source", default=None, help="that source's name (needed when the file has several)")
        q.add_argument("--data-dir", default="./data", help="without -c: the gateway's data directory (./data); "
                                                            "its pki/opcua holds the certificate and trust list")
        q.add_argument("--application-uri", default=None, help="without -c: the URI of a generated certificate")

    p = opcua.add_parser("cert", help="show the client certificate (generated if missing): path, subject, URI, "
                                      "validity, SHA-256; and the trust list's trusted and rejected certificates")
    source_options(p)
    p.add_argument("--trust", type=Path, default=None, metavar="FILE",
                   help="trust this server certificate (e.g. one in rejected/): copied into trusted/")
    p.set_defaults(func=cmd_opcua_cert)

    p = opcua.add_parser("browse", help="print the address space under a browse path: path, NodeId, node class, "
                                        "data type, value")
    p.add_argument("targets", nargs="*", metavar="ENDPOINT [PATH]",
                   help="opc.tcp://host:port (default with -c: the source's), then a browse path such as "
                        "/Plant1/Line1 (default /)")
    p.add_argument("--depth", type=int, default=1, help="levels below PATH (default 1)")
    source_options(p)
    p.add_argument("--security-policy", default=None, help="None (default), Basic256Sha256, Aes128_Sha256_RsaOaep, "
                                                           "Aes256_Sha256_RsaPss")
    p.add_argument("--security-mode", default=None, help="Sign or SignAndEncrypt")
    p.add_argument("--allow-deprecated", action="store_true", help="allow Basic128Rsa15 and Basic256")
    p.add_argument("--certificate", type=Path, default=None, help="client certificate (default: the generated one)")
    p.add_argument("--private-key", type=Path, default=None)
    p.add_argument("--trust-list", type=Path, default=None, help="folder with trusted/ and rejected/ "
                                                                  "(default: <data-dir>/pki/opcua)")
    p.add_argument("--server-sha256", default=None, help="or accept only the server certificate with this SHA-256")
    p.add_argument("--trust-any", action="store_true", help="or accept any server certificate")
    p.add_argument("--username", default=None)
    p.add_argument("--password-env", default=None, metavar="VAR", help="the environment variable holding the "
                                                                        "password (never on the command line)")
    p.add_argument("--user-certificate", type=Path, default=None, help="X.509 user identity: certificate ...")
    p.add_argument("--user-private-key", type=Path, default=None, help="... and its private key")
    p.add_argument("--timeout", type=float, default=None, help="seconds for the connection and each request (5)")
    p.set_defaults(func=cmd_opcua_browse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level, args.log_format)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
