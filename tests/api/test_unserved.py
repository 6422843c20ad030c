"""Every botocore operation is served or answers 501 naming it; the README's table says which, and is current."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from api.app import SITEWISE_ROUTERS, served_operations
from api.sitewise.unserved import operation_for, operations, table
from tests.api.test_control_plane import PRESS1, api
from tests.conftest import ROOT

__all__ = ["api"]

SOME_ID = str(uuid.UUID(int=5))


def test_readme_table_is_what_the_app_serves() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- operations:begin -->\n(.*?)\n<!-- operations:end -->", readme, re.S)
    assert found is not None, "README.md lost its operations table markers"
    assert found.group(1) == table(served_operations()), "README's table is stale: python -m api.operations_table"
    assert len(found.group(1).splitlines()) == len(operations()) + 2


def _routes(routes: list[Any]) -> list[Any]:
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += _routes(inner.routes) if inner is not None else [route]
    return out


def test_each_served_route_is_the_operation_it_claims() -> None:
    """A route's summary names its operation: botocore's method and URI template must be the route's."""
    by_name = {o.name: o for o in operations()}
    checked = set()
    for route in _routes([r for router in SITEWISE_ROUTERS for r in router.routes]):
        op = by_name.get(getattr(route, "summary", None) or "")
        if op is None:
            continue
        path = re.sub(r"\{[^}]+\}", SOME_ID, route.path)
        assert op.method in route.methods, (op.name, route.methods)
        assert operation_for(op.method, path) == op.name, (op.name, route.path)
        checked.add(op.name)
    assert checked == served_operations() and len(checked) >= 27


@pytest.mark.parametrize(("op", "kwargs", "name"), [
    ("describe_gateway", {"gatewayId": SOME_ID}, "DescribeGateway"),
    ("list_portals", {}, "ListPortals"),
    ("describe_default_encryption_configuration", {}, "DescribeDefaultEncryptionConfiguration"),
    ("describe_storage_configuration", {}, "DescribeStorageConfiguration"),
    ("list_gateways", {}, "ListGateways"),
], ids=["gateway", "portal", "encryption", "storage-configuration", "gateways"])
async def test_an_unserved_operation_answers_501_naming_it(api: Any, op: str, kwargs: dict[str, Any],
                                                          name: str) -> None:
    _, client = api
    if name in served_operations():
        pytest.fail(f"{name} is served now: pick another unserved operation for this case")
    err = await client.error(op, **kwargs)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert err["Error"]["Code"] == "NotImplementedException"
    assert err["Error"]["Message"].startswith(f"{name} is not supported by this sitewise-edge gateway")


async def test_the_running_app_serves_what_the_table_says(api: Any) -> None:
    """Every operation route of the app (its OpenAPI summaries) is in SITEWISE_ROUTERS, which the table reads."""
    gw, _ = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        spec = (await http.get("/openapi.json")).json()
    names = {o.name for o in operations()}
    summaries = {op.get("summary") for path in spec["paths"].values() for op in path.values()}
    assert summaries & names == served_operations(), "a router of SiteWise operations is missing from " \
        "api.app.SITEWISE_ROUTERS"


async def test_a_path_of_no_operation_is_still_not_found(api: Any) -> None:
    gw, client = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        resp = await http.get("/no/such/thing")
    assert resp.status_code == 404
    assert resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    err = await client.error("describe_asset", assetId=SOME_ID)  # a served operation, a missing resource
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert (await client("describe_asset", assetId=PRESS1))["assetName"] == "Press1"

