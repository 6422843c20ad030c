"""SiteWise response bodies of the registry's values (api/sitewise/render.py), checked against botocore's model,
and the one mapping of the model layer's errors to SiteWise errors (api/sitewise/errors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.sitewise import render
from api.sitewise.errors import error_response, sitewise_error
from asset_models.documents import build_catalog
from asset_models.errors import ModelExists, ModelInUse, ModelInvalid, ModelNotFound
from asset_models.registry import Registry
from sitewise_edge.errors import ApiError, ExpressionError
from sitewise_edge.runtime.models import load_registry
from tests.asset_models.test_models import EXAMPLE, LOADED_AT, RICH, asset_named, model_named, write
from tests.botocore_shapes import assert_valid_output, operation, shape_problems


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLE], loaded_at=LOADED_AT)


@pytest.fixture
def rich() -> Registry:
    return Registry(build_catalog([("rich.json", RICH)]), loaded_at=LOADED_AT)


def test_describe_asset_model_output_loads_as_it_is(registry: Registry, tmp_path: Path) -> None:
    """What `aws iotsitewise describe-asset-model` / `describe-asset` print is a valid file."""
    for model in registry.models():
        write(tmp_path / f"model-{model.name}.json", render.describe_asset_model(registry, model.id))
    for asset in registry.assets():
        write(tmp_path / f"asset-{asset.name}.json", render.describe_asset(registry, asset.id))
    again = load_registry([tmp_path], loaded_at=LOADED_AT)
    for model in registry.models():
        assert render.describe_asset_model(again, model.id) == render.describe_asset_model(registry, model.id)
    for asset in registry.assets():
        assert render.describe_asset(again, asset.id) == render.describe_asset(registry, asset.id)


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.asset("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"),
     "Asset 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9 does not exist."),
    (lambda r: r.asset("externalId:nope"), "Asset externalId:nope does not exist."),
    (lambda r: r.model("externalId:nope"), "Asset model externalId:nope does not exist."),
    (lambda r: r.property("externalId:press-1", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"),
     "Asset property 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9 does not exist in asset "),
    (lambda r: render.describe_asset(r, "externalId:nope"), "Asset externalId:nope does not exist."),
    (lambda r: render.list_assets(r, "externalId:nope"), "Asset model externalId:nope does not exist."),
], ids=["asset", "asset-external", "model", "property", "describe-asset", "list-assets-model"])
def test_not_found(rich: Registry, call: Any, message: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        call(rich)
    error = sitewise_error(caught.value)
    assert error.code == "ResourceNotFoundException" and error.status == 404
    assert error.message.startswith(message)


# --- responses against botocore's model ---------------------------------------------------------


def test_describe_asset_model_matches_botocore(registry: Registry, rich: Registry) -> None:
    for reg in (registry, rich):
        for model in reg.models():
            parsed = assert_valid_output("DescribeAssetModel", render.describe_asset_model(reg, model.id))
            assert parsed["assetModelStatus"] == {"state": "ACTIVE"}
            assert_valid_output("DescribeAssetModel",
                                render.describe_asset_model(reg, model.id, exclude_properties=True))
    body = render.describe_asset_model(rich, "externalId:machine-v1")
    assert body["assetModelExternalId"] == "machine-v1"
    assert body["assetModelArn"] == f"arn:aws:iotsitewise:local:000000000000:asset-model/{body['assetModelId']}"
    types = {p["name"]: p["type"] for p in body["assetModelProperties"]}
    assert types["Maker"] == {"attribute": {"defaultValue": "ACME"}}
    assert types["Max speed"]["metric"]["window"] == {"tumbling": {"interval": "1h"}}


def test_describe_asset_matches_botocore(registry: Registry, rich: Registry) -> None:
    for reg in (registry, rich):
        for asset in reg.assets():
            parsed = assert_valid_output("DescribeAsset", render.describe_asset(reg, asset.id))
            assert parsed["assetCreationDate"].timestamp() == LOADED_AT
    body = render.describe_asset(rich, "externalId:press-1")
    assert body["assetArn"] == f"arn:aws:iotsitewise:local:000000000000:asset/{body['assetId']}"
    assert body["assetExternalId"] == "press-1" and body["assetDescription"] == "The first press"
    speed, state = body["assetProperties"][0], body["assetProperties"][1]
    assert speed["unit"] == "rev/min" and speed["notification"]["state"] == "ENABLED"
    assert set(state) == {"id", "name", "dataType"}  # optional members omitted unless set
    assert render.describe_asset(rich, "externalId:press-1", exclude_properties=True)["assetProperties"] == []


def test_list_responses_match_botocore(registry: Registry) -> None:
    machine, line = model_named(registry, "Machine"), asset_named(registry, "Line 1")
    all_machines = render.list_assets(registry, machine.id, "ALL")
    assert [a["name"] for a in all_machines] == ["Oven1", "Press1", "Press2"]
    top = render.list_assets(registry, None, "TOP_LEVEL")
    assert [a["name"] for a in top] == ["Line 1"]
    assert render.list_assets(registry, machine.id, "TOP_LEVEL") == []
    children = render.list_associated_assets(registry, line.id, line.hierarchies[0].id, "CHILD")
    assert [a["name"] for a in children] == ["Oven1", "Press1", "Press2"]
    assert render.list_associated_assets(registry, line.id) == children
    parent = render.list_associated_assets(registry, children[0]["id"], direction="PARENT")
    assert [a["id"] for a in parent] == [line.id]
    assert render.list_associated_assets(registry, line.id, direction="PARENT") == []
    for body in (all_machines, top, children, parent):
        assert_valid_output("ListAssets", {"assetSummaries": body})
        assert_valid_output("ListAssociatedAssets", {"assetSummaries": body})
    assert_valid_output("ListAssetModels", {"assetModelSummaries": render.list_asset_models(registry)})
    assert [m["name"] for m in render.list_asset_models(registry, ["ASSET_MODEL"])] == ["Line", "Machine"]


@pytest.mark.parametrize(("kwargs", "code", "message"), [
    ({}, "InvalidRequestException", "assetModelId is required when filter is ALL."),
    ({"filter": "SOME"}, "InvalidRequestException", "Invalid filter SOME. Valid values are ALL and TOP_LEVEL."),
], ids=["all-without-model", "unknown-filter"])
def test_list_assets_refuses_like_sitewise(registry: Registry, kwargs: dict[str, Any], code: str,
                                           message: str) -> None:
    with pytest.raises(ApiError) as caught:
        render.list_assets(registry, **kwargs)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_list_associated_assets_errors(registry: Registry) -> None:
    line = asset_named(registry, "Line 1")
    with pytest.raises(ModelNotFound, match="Hierarchy Machines does not exist") as caught:
        render.list_associated_assets(registry, line.id, "Machines")  # a name is not an id
    assert sitewise_error(caught.value).code == "ResourceNotFoundException"
    with pytest.raises(ApiError) as caught:
        render.list_associated_assets(registry, line.id, direction="UP")
    assert caught.value.code == "InvalidRequestException"


def test_shape_checker_finds_problems() -> None:
    shape = operation("DescribeAsset").output_shape
    problems = shape_problems(shape, {"assetId": "x", "assetProperties": [{"name": "n", "dataType": "FLOAT"}],
                                      "bogus": 1})
    assert "$: missing required member 'assetArn' of DescribeAssetResponse" in problems
    assert "$: unknown member 'bogus' for DescribeAssetResponse" in problems
    assert "$.assetProperties[0]: missing required member 'id' of AssetProperty" in problems
    assert any(p.startswith("$.assetProperties[0].dataType: 'FLOAT' is not one of") for p in problems)
    assert any(p.startswith("$.assetId: length 1 is outside 36..36") for p in problems)


def test_empty_registry_lists_nothing() -> None:
    registry = Registry.empty()
    assert render.list_asset_models(registry) == [] and render.list_assets(registry, filter="TOP_LEVEL") == []


# --- the error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "code", "status", "fields"), [
    (ModelNotFound("Asset x does not exist.", "x"), "ResourceNotFoundException", 404, {}),
    (ModelInvalid("assetName is required."), "InvalidRequestException", 400, {}),
    (ModelInvalid(["a: one", "b: two"]), "InvalidRequestException", 400, {}),
    (ExpressionError("foo(x)", 0, "unknown function 'foo'"), "InvalidRequestException", 400, {}),
    (ModelExists("Asset model m already exists.", "m", "asset-model"), "ResourceAlreadyExistsException", 409,
     {"resourceId": "m", "resourceArn": "arn:aws:iotsitewise:local:000000000000:asset-model/m"}),
    (ModelInUse("Asset a is associated with other assets.", "a", "asset"), "ConflictingOperationException", 409,
     {"resourceId": "a", "resourceArn": "arn:aws:iotsitewise:local:000000000000:asset/a"}),
], ids=["not-found", "invalid", "invalid-many", "expression", "exists", "in-use"])
def test_model_errors_map_to_sitewise_errors(error: Exception, code: str, status: int,
                                             fields: dict[str, str]) -> None:
    mapped = sitewise_error(error)  # type: ignore[arg-type]
    assert (mapped.code, mapped.status, dict(mapped.fields)) == (code, status, fields)
    expected = "a: one; b: two" if isinstance(error, ModelInvalid) and len(error.problems) > 1 else str(error)
    assert mapped.message == expected
    response = error_response(mapped)
    assert response.status_code == status and response.headers["x-amzn-errortype"] == code
    shape = operation("CreateAssetModel").service_model.shape_for(code)
    assert set(shape.members) == {"message", *fields}  # the members botocore's error shape has


def test_api_errors_pass_unchanged() -> None:
    error = ApiError("ThrottlingException", "slow down")
    assert sitewise_error(error) is error
