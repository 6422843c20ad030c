"""Browse-path selection: the rule table (pure), then browsing a real asyncua server."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from asyncua import ua
from pydantic import ValidationError

from connectors.opcua import OpcUaStreamingConnector, make_opcua_connector
from connectors.opcua.config import OpcUaSource
from connectors.opcua.paths import PathRules, parse_rule
from sitewise_edge.samples import Quality
from sitewise_edge.simulators.opcua import OpcUaSimulator
from sitewise_edge.simulators.plant import MACHINES, SIGNALS
from tests.conftest import eventually
from tests.opcua.test_opcua import collect, rows

live = pytest.mark.asyncio(loop_scope="module")

RULES = [
    pytest.param(["/Plant1/**"], [], "/Plant1/Line1/Press1/Speed", True, id="double-star-any-depth"),
    pytest.param(["/Plant1/"], [], "/Plant1/Line1/Press1/Speed", True, id="trailing-slash-is-everything-below"),
    pytest.param(["/**/Speed"], [], "/Plant1/Line1/Press1/Speed", True, id="leading-double-star"),
    pytest.param(["/**/Speed"], [], "/Speed", True, id="double-star-zero-levels"),
    pytest.param(["/*/*/*/Sp*"], [], "/Plant1/Line1/Press1/Speed", True, id="one-level-stars"),
    pytest.param(["/*/*/Sp*"], [], "/Plant1/Line1/Press1/Speed", False, id="star-is-exactly-one-level"),
    pytest.param(["/Plant1/Line1/Press1/Speed"], [], "/Plant1/Line1/Press1/Speed", True, id="exact"),
    pytest.param(["/Plant1/Line1/Press1/Speed"], [], "/Plant1/Line1/Press1/SpeedSetpoint", False,
                 id="exact-not-prefix"),
    pytest.param(["/Plant1/**"], ["/**/Status"], "/Plant1/Line1/Press1/Status", False, id="excluded"),
    pytest.param(["/Plant1/**"], ["/**/Status"], "/Plant1/Line1/Press1/Speed", True, id="not-excluded"),
    pytest.param(["/WA/**/Counter*"], [], "/WA/Seattle/Line 2/Counter7", True, id="spaces-in-names"),
    pytest.param(["/Plant?/**"], [], "/Plant2/X", True, id="question-mark"),
]


@pytest.mark.parametrize(("include", "exclude", "path", "selected"), RULES)
def test_rules(include: list[str], exclude: list[str], path: str, selected: bool) -> None:
    assert PathRules(include, exclude).matches(tuple(path[1:].split("/"))) is selected


def test_browsing_is_pruned() -> None:
    rules = PathRules(["/Plant1/Line1/*/Speed"])
    assert rules.worth_browsing(("Plant1", "Line1"))
    assert not rules.worth_browsing(("Plant2",))
    assert not PathRules(["/**"]).worth_browsing(("Server",))


@pytest.mark.parametrize(("rule", "message"), [
    pytest.param("Plant1/**", "must start with /", id="relative"),
    pytest.param("/Plant1//X", "empty segment", id="empty-segment"),
    pytest.param("/Plant1/a**", "** must be a whole segment", id="double-star-in-segment"),
])
def test_bad_rules_name_the_rule(rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rule(rule)
    with pytest.raises(ValidationError) as info:
        OpcUaSource.model_validate({"name": "s", "type": "opcua", "endpoint": "opc.tcp://h:4840",
                                    "browse": {"include": ["/ok/**"], "exclude": [rule]}})
    assert info.value.errors()[0]["loc"] == ("browse", "exclude")
    assert repr(rule) in str(info.value)


def test_a_source_needs_nodes_or_browse() -> None:
    with pytest.raises(ValidationError, match=r"needs nodes .* or browse"):
        OpcUaSource.model_validate({"name": "s", "type": "opcua", "endpoint": "opc.tcp://h:4840"})


def browse_source(endpoint: str, browse: dict[str, Any], **kw: Any) -> OpcUaSource:
    fields: dict[str, Any] = {"name": "sim", "type": "opcua", "endpoint": endpoint, "interval": 0.2, "timeout": 2,
                              "browse": browse}
    return OpcUaSource.model_validate({**fields, **kw})


@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_browse_selects_and_aliases(sim: OpcUaSimulator, mode: str) -> None:
    cfg = browse_source(sim.endpoint, {"include": ["/Plant1/Line1/*/Temp*", "/Plant1/**/Running"],
                                       "exclude": ["/**/Oven1/*"], "prefix": "/site/"}, mode=mode)
    want = {f"/site/Plant1/Line1/{m}/{s}" for m in MACHINES if m != "Oven1" for s in ("Temperature", "Running")}
    want |= {f"/site/Plant1/Line1/{m}/TemperatureX10" for m in MACHINES if m != "Oven1"}
    assert {s for s, _ in SIGNALS} >= {"Temperature", "TemperatureX10", "Running"}
    connector = make_opcua_connector(cfg)
    await connector.open()
    try:
        if isinstance(connector, OpcUaStreamingConnector):
            seen = await collect(connector, want)
        else:
            seen = rows(await connector.poll())
        assert set(seen) == want
        assert {q for _, q, _ in seen.values()} == {Quality.GOOD}
        assert connector.status.tag_errors == {}
    finally:
        await connector.close()


# asyncua's server calls its async datachange callback without awaiting it when a monitored node is
# deleted (address_space._delete_node_callbacks): the client is never told, the coroutine warns.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*datachange_callback:pytest.PytestUnraisableExceptionWarning")
@live
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_rebrowse_adds_new_and_reports_vanished(sim: OpcUaSimulator, mode: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A variable added at run time starts flowing; one deleted gets a BAD row, a tag error and one log line,
    on the schedule and at a reconnect; the others go on."""
    assert sim.server is not None
    idx = 2
    name = f"Extra{mode}"
    folder = await sim.server.nodes.objects.add_folder(ua.NodeId(name, idx), ua.QualifiedName(name, idx))
    first = await folder.add_variable(ua.NodeId(f"Extra{mode}.A", idx), ua.QualifiedName("A", idx), 1.5)
    cfg = browse_source(sim.endpoint, {"include": [f"/Extra{mode}/*"], "interval": 0.2}, mode=mode)
    a, b = f"/Extra{mode}/A", f"/Extra{mode}/B"
    connector = make_opcua_connector(cfg)
    await connector.open()

    async def next_rows() -> dict[str, Any]:
        if isinstance(connector, OpcUaStreamingConnector):
            async for batch in connector.stream():
                return rows(batch)
            raise AssertionError("stream ended")
        await eventually(lambda: connector._browse_due(), 5)
        return rows(await connector.poll())

    async def until(alias: str, quality: Quality) -> None:
        seen: dict[str, Any] = {}
        while seen.get(alias, (None, None))[1] != quality:
            seen.update(await next_rows())

    try:
        await until(a, Quality.GOOD)
        second = await folder.add_variable(ua.NodeId(f"Extra{mode}.B", idx), ua.QualifiedName("B", idx), 7)
        await until(b, Quality.GOOD)
        with caplog.at_level(logging.WARNING, "connectors.opcua"):
            await second.delete()
            await until(b, Quality.BAD)
        assert "no longer on the server" in connector.status.tag_errors[b]
        assert sum(b in r.getMessage() for r in caplog.records) == 1
        await first.write_value(2.5)
        await until(a, Quality.GOOD)
        await connector.close()
        # Deleted while the source is away: reported at the reconnect's browse.
        await first.delete()
        await connector.open()
        await until(a, Quality.BAD)
        assert "no longer on the server" in connector.status.tag_errors[a]
    finally:
        await connector.close()
        await folder.delete(recursive=True)
