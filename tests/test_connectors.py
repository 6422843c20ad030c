"""The connector seam: the registry and its samples, and the values the runtime drops for a source.

The state the runtime sets is tested against the Modbus simulator in tests/modbus/test_runtime.py."""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.metadata
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors.base import (
    Connector,
    ConnectorState,
    ConnectorStatus,
    ConnectorType,
    PollingConnector,
    StreamingConnector,
)
from sitewise_edge.config import CONNECTORS_ENTRY_POINTS, SourceConfig, load_config, source_types
from sitewise_edge.runtime import Gateway, make_connector
from sitewise_edge.samples import SCHEMA, from_sitewise_values
from tests.conftest import eventually, gateway_config

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TYPES = sorted(source_types())


def folder_of(name: str) -> Path:
    """The folder of a registered connector's package (where its sample and README live)."""
    spec = source_types()[name]
    package = spec.config.__module__.rsplit(".", 1)[0]
    return ROOT.joinpath(*package.split("."))


# --- the registry ------------------------------------------------------------------------------


def test_the_shipped_connectors_are_registered_through_entry_points() -> None:
    declared = PYPROJECT["project"]["entry-points"][CONNECTORS_ENTRY_POINTS]
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=CONNECTORS_ENTRY_POINTS)}
    assert installed == declared, "the installed metadata is stale: pip install -e ."
    assert TYPES == ["modbus", "opcua"]
    for name, spec in source_types().items():
        assert isinstance(spec, ConnectorType) and spec.type == name
        assert issubclass(spec.config, SourceConfig)


@pytest.mark.parametrize("name", TYPES)
def test_the_sample_validates_and_builds_a_connector(name: str) -> None:
    sample = folder_of(name) / "sample.yaml"
    text = sample.read_text(encoding="utf-8")
    env = dict.fromkeys(re.findall(r"\$\{(\w+)\}", text), "from-the-environment")
    cfg = load_config(sample, env=env)
    assert cfg.sources and {s.type for s in cfg.sources} == {name}  # a sample may show several sources
    for source in cfg.sources:
        assert type(source) is source_types()[name].config
        assert source.aliases() and len(set(source.aliases())) == len(source.aliases())
        connector = make_connector(source)  # no I/O until open()
        assert isinstance(connector, Connector) and connector.name == source.name
    assert connector.status.state is ConnectorState.STARTING


@pytest.mark.parametrize("name", TYPES)
def test_the_readme_shows_the_sample(name: str) -> None:
    sample = (folder_of(name) / "sample.yaml").read_text(encoding="utf-8")
    readme = (folder_of(name) / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{sample}```" in readme, f"{name}/README.md does not show sample.yaml as it is"


@pytest.mark.parametrize("name", TYPES)
def test_package_data_ships_the_sample(name: str) -> None:
    package = source_types()[name].config.__module__.rsplit(".", 1)[0]
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    patterns = [*data.get("*", []), *data.get(package, [])]
    assert any(fnmatch.fnmatch("sample.yaml", p) for p in patterns), patterns


# --- what the runtime owns -----------------------------------------------------------------------


async def health(gw: Gateway) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as client:
        response = await client.get("/health")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


class _MalformedSource(PollingConnector):
    """A connector with a bug: its batches have the sample columns, but times that are not times."""

    def __init__(self) -> None:
        self.name = "buggy"
        self.interval = 0.05
        self.status = ConnectorStatus()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def poll(self) -> pa.RecordBatch:
        columns = {f.name: pa.nulls(2, f.type) for f in SCHEMA}
        columns["stream"] = pa.array(["/buggy/a", "/buggy/b"]).dictionary_encode()
        columns["time"] = pa.array(["soon", "later"])
        columns["quality"] = pa.array([0, 0], SCHEMA.field("quality").type)
        batch: pa.RecordBatch = pa.RecordBatch.from_pydict(columns)
        return batch


async def test_a_malformed_batch_is_dropped_and_counted_for_its_source(tmp_path: Path) -> None:
    gw = Gateway(gateway_config(tmp_path))
    buggy = _MalformedSource()
    gw.connectors = [buggy]
    await gw.start()
    try:
        source = await eventually(lambda: buggy.status.values_dropped >= 2 and health(gw))
        shown = (await health(gw))["sources"]["buggy"]
        assert shown["valuesDropped"] >= 2 and shown["valuesDropped"] % 2 == 0
        assert source["sources"]["buggy"]["state"] == "connected"  # the runtime goes on reading it
    finally:
        await gw.stop()


async def test_a_malformed_batch_stored_with_others_loses_none_of_theirs(tmp_path: Path) -> None:
    """Batches of several sources are stored as one append: a malformed one is dropped alone."""
    gw = Gateway(gateway_config(tmp_path))
    buggy = _MalformedSource()
    gw.connectors = []
    await gw.start()
    try:
        good = from_sitewise_values("/good/x", [{"timestamp": {"timeInSeconds": 1_700_000_000},
                                                 "value": {"doubleValue": 4.5}, "quality": "GOOD"}])
        await gw._store_read([(ConnectorStatus(), good), (buggy.status, await buggy.poll())])
        assert buggy.status.values_dropped == 2
        assert gw.store.latest("/good/x").column("double").to_pylist() == [4.5]
    finally:
        await gw.stop()


class _DeafSource(StreamingConnector):
    """A connector whose first cancellation is lost, as one inside ``asyncio.wait_for`` is on Python 3.11 when
    the device's answer arrives in the same loop iteration."""

    def __init__(self) -> None:
        self.name = "deaf"
        self.status = ConnectorStatus()
        self.cancels_lost = 0
        self.reading = asyncio.Event()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def stream(self) -> AsyncIterator[pa.RecordBatch]:
        while True:
            self.reading.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.cancels_lost:
                    raise
                self.cancels_lost += 1  # swallowed: the task reads on
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()
        yield pa.RecordBatch.from_pylist([], schema=SCHEMA)  # pragma: no cover - never reached


async def test_stop_ends_a_source_that_loses_its_cancellation(tmp_path: Path) -> None:
    gw = Gateway(gateway_config(tmp_path))
    deaf = _DeafSource()
    gw.connectors = [deaf]
    await gw.start()
    await deaf.reading.wait()
    async with asyncio.timeout(10):  # before: stop() waited for ever
        await gw.stop()
    assert deaf.cancels_lost == 1 and deaf.status.state is ConnectorState.STOPPED
