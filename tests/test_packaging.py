"""The repository's own promises: docker-compose matches the examples, the README documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import yaml

from connectors.modbus.config import ModbusSource, ModbusTag
from connectors.opcua.config import OpcUaNode, OpcUaSource
from sitewise_edge import config
from sitewise_edge.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_parses_and_uses_the_example_configs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"opcua-simulator", "modbus-simulator", "cloud", "gateway"}
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        assert svc["build"] == "." and (ROOT / "Dockerfile").exists()
    assert services["gateway"]["command"][-1] == "examples/gateway.yaml"
    assert services["cloud"]["command"][-1] == "examples/cloud.yaml"
    # the example configs validate with the environment compose gives them
    for svc in ("gateway", "cloud"):
        env = {k: str(v) for k, v in services[svc]["environment"].items()}
        env["SITEWISE_EDGE_TOKEN"] = "secret"
        cfg = load_config(ROOT / services[svc]["command"][-1], env=env)
        assert cfg.api.host == "0.0.0.0" and cfg.api.token == "secret"
    gateway = load_config(ROOT / "examples/gateway.yaml", env={**services["gateway"]["environment"],
                                                                "SITEWISE_EDGE_TOKEN": "x"})
    assert gateway.publishers[0].endpoint_url == "http://cloud:8081"


def _settings(model: type[pydantic.BaseModel], prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in model.model_fields]


def test_readme_documents_every_core_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`([a-z_]+(?:\[\])?\.[a-z_]+)`", readme))
    expected = (_settings(config.GatewayConfig, "gateway") + _settings(config.ApiConfig, "api")
                + _settings(config.StorageConfig, "storage") + _settings(config.SitewisePublisher, "publishers[]"))
    missing = [s for s in expected if s not in documented and s.split(".")[1] not in ("name", "type")]
    assert not missing, f"settings missing from the README: {missing}"


def test_connector_readmes_document_every_setting() -> None:
    modbus, opcua = "connectors/modbus/README.md", "connectors/opcua/README.md"
    for model, path in ((ModbusSource, modbus), (ModbusTag, modbus), (OpcUaSource, opcua), (OpcUaNode, opcua)):
        text = (ROOT / path).read_text()
        missing = [f for f in model.model_fields if f not in text]
        assert not missing, f"{path} does not mention {missing}"


def test_every_package_is_typed_and_gated() -> None:
    """Each top-level package ships ``py.typed`` (PEP 561), and ``make test`` runs mypy over all of them."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = ("sitewise_edge", "connectors", "asset_models", "storage", "api")
    assert sorted(project["tool"]["mypy"]["files"]) == sorted(packages)
    assert all((ROOT / p / "py.typed").exists() for p in packages)
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["*"]
    assert "$(BIN)/mypy" in (ROOT / "Makefile").read_text().split("test:", 1)[1].split("\n\n", 1)[0]
