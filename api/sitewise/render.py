"""The registry's typed values as SiteWise response bodies, in exactly botocore's ``iotsitewise`` shapes.

    describe_asset_model(registry, "externalId:machine-v1")     # a DescribeAssetModel body
    list_assets(registry, model_id, "ALL")                      # AssetSummary items, whole: paging is the route's
    model_arn(model_id)                                         # arn:aws:iotsitewise:local:000000000000:asset-model/...

The registry answers queries over typed objects and raises the model layer's errors (a missing
model is ``ModelNotFound``, which the app's handler answers as ``ResourceNotFoundException``);
the checks of the request's own values (``filter``, ``traversalDirection``) are here and raise
``ApiError``. Optional members are left out unless set, as SiteWise leaves them out. The gateway
also writes :func:`describe_asset_model` and :func:`describe_asset` bodies to ``data_dir/models``:
they are the files it loads at start.
"""

from __future__ import annotations

from typing import Any

from asset_models.errors import ModelNotFound, ResourceType
from asset_models.model import (
    Asset,
    AssetModel,
    AssetProperty,
    CompositeModel,
    ModelProperty,
    PropertyKind,
    Variable,
)
from asset_models.registry import Change, Registry
from sitewise_edge.errors import ApiError

ARN_PREFIX = "arn:aws:iotsitewise:local:000000000000"
LIST_FILTERS = ("ALL", "TOP_LEVEL")
PROPERTY_FILTERS = ("ALL", "BASE")
DIRECTIONS = ("CHILD", "PARENT")


def arn(resource_type: ResourceType, resource_id: str) -> str:
    """The ARN SiteWise would give the object (a fixed local account and region)."""
    return f"{ARN_PREFIX}:{resource_type}/{resource_id}"


def asset_arn(asset_id: str) -> str:
    return arn("asset", asset_id)


def model_arn(model_id: str) -> str:
    return arn("asset-model", model_id)


# --- asset models ------------------------------------------------------------------------------------


def describe_asset_model(registry: Registry, ref: str, exclude_properties: bool = False) -> dict[str, Any]:
    """A ``DescribeAssetModel`` response body."""
    model = registry.model(ref)
    out: dict[str, Any] = {
        "assetModelId": model.id,
        "assetModelArn": model_arn(model.id),
        "assetModelName": model.name,
        "assetModelType": model.model_type,
        # Required in the response; a file may have none, and SiteWise's Description needs 1+ characters.
        "assetModelDescription": model.description or model.name,
        "assetModelProperties": [] if exclude_properties else [model_property_json(p) for p in model.properties],
        "assetModelHierarchies": [_hierarchy_json(h.id, h.name, h.external_id, h.child_model_id)
                                  for h in model.hierarchies],
        "assetModelCompositeModels": [_composite_json(c, model_property_json) for c in model.composite_models],
        "assetModelCreationDate": registry.created(model),
        "assetModelLastUpdateDate": registry.updated(model),
        "assetModelStatus": _active(),
        "assetModelVersion": "1",
    }
    if model.external_id:
        out["assetModelExternalId"] = model.external_id
    return out


def list_asset_models(registry: Registry, asset_model_types: list[str] | None = None) -> list[dict[str, Any]]:
    """``AssetModelSummary`` items, by name."""
    return [_model_summary(registry, m) for m in registry.models()
            if not asset_model_types or m.model_type in asset_model_types]


def _model_summary(registry: Registry, model: AssetModel) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": model.id,
        "arn": model_arn(model.id),
        "name": model.name,
        "assetModelType": model.model_type,
        "description": model.description or model.name,
        "creationDate": registry.created(model),
        "lastUpdateDate": registry.updated(model),
        "status": _active(),
        "version": "1",
    }
    if model.external_id:
        summary["externalId"] = model.external_id
    return summary


def model_property_json(prop: ModelProperty) -> dict[str, Any]:
    """An ``AssetModelProperty``."""
    return _drop_none({"id": prop.id, "externalId": prop.external_id, "name": prop.name,
                       "dataType": prop.data_type, "dataTypeSpec": prop.data_type_spec,
                       "unit": prop.unit, "type": property_type_json(prop)})


def property_type_json(prop: ModelProperty) -> dict[str, Any]:
    """The ``PropertyType`` member, rebuilt in SiteWise's shape."""
    body: dict[str, Any] = {}
    if prop.kind is PropertyKind.ATTRIBUTE:
        if prop.default_value is not None:
            body["defaultValue"] = prop.default_value
    elif prop.kind is PropertyKind.MEASUREMENT:
        if prop.forwarding is not None:
            body["processingConfig"] = {"forwardingConfig": {"state": prop.forwarding}}
    else:
        if prop.expression is not None:
            body["expression"] = prop.expression
        if prop.variables or prop.kind is PropertyKind.TRANSFORM:
            body["variables"] = [_variable_json(v) for v in prop.variables]
        if prop.window is not None:
            body["window"] = {"tumbling": _drop_none({"interval": prop.window.interval,
                                                      "offset": prop.window.offset})}
        if prop.compute_location is not None:
            config: dict[str, Any] = {"computeLocation": prop.compute_location}
            if prop.forwarding is not None and prop.kind is PropertyKind.TRANSFORM:
                config["forwardingConfig"] = {"state": prop.forwarding}
            body["processingConfig"] = config
    return {prop.kind.value: body}


def _variable_json(var: Variable) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if var.property_id is not None:
        value["propertyId"] = var.property_id
    if var.hierarchy_id is not None:
        value["hierarchyId"] = var.hierarchy_id
    if var.property_path:
        value["propertyPath"] = [_drop_none({"id": i, "name": n}) for i, n in var.property_path]
    return {"name": var.name, "value": value}


# --- assets ------------------------------------------------------------------------------------------


def describe_asset(registry: Registry, ref: str, exclude_properties: bool = False) -> dict[str, Any]:
    """A ``DescribeAsset`` response body."""
    asset = registry.asset(ref)
    out: dict[str, Any] = {
        "assetId": asset.id,
        "assetArn": asset_arn(asset.id),
        "assetName": asset.name,
        "assetModelId": asset.model_id,
        "assetProperties": [] if exclude_properties else [_asset_property_json(p) for p in asset.properties],
        "assetHierarchies": [_hierarchy_json(h.id, h.name, h.external_id) for h in asset.hierarchies],
        "assetCompositeModels": [_composite_json(c, _composite_property_json)
                                 for c in registry.model(asset.model_id).composite_models],
        "assetCreationDate": registry.created(asset),
        "assetLastUpdateDate": registry.updated(asset),
        "assetStatus": _active(),
    }
    if asset.external_id:
        out["assetExternalId"] = asset.external_id
    if asset.description:
        out["assetDescription"] = asset.description
    return out


def list_assets(registry: Registry, asset_model_id: str | None = None, filter: str = "ALL") -> list[dict[str, Any]]:
    """``AssetSummary`` items: ALL assets of a model (assetModelId required), or TOP_LEVEL (no parent)."""
    if filter not in LIST_FILTERS:
        raise _invalid(f"Invalid filter {filter}. Valid values are ALL and TOP_LEVEL.")
    if filter == "ALL" and not asset_model_id:
        raise _invalid("assetModelId is required when filter is ALL.")
    model_id = registry.model(asset_model_id).id if asset_model_id else None
    return [asset_summary(registry, a) for a in registry.assets(model_id, top_level=filter == "TOP_LEVEL")]


def list_associated_assets(registry: Registry, asset_id: str, hierarchy_id: str | None = None,
                           direction: str = "CHILD") -> list[dict[str, Any]]:
    """``AssociatedAssetsSummary`` items: the children (under one hierarchy, or all) or the parent."""
    if direction not in DIRECTIONS:
        raise _invalid(f"Invalid traversalDirection {direction}. Valid values are CHILD and PARENT.")
    asset = registry.asset(asset_id)
    if direction == "CHILD":
        hierarchy = registry.hierarchy(asset, hierarchy_id).id if hierarchy_id is not None else None
        return [asset_summary(registry, a) for a in registry.children(asset.id, hierarchy)]
    parent = registry.parent(asset.id)
    return [asset_summary(registry, parent)] if parent is not None else []


def asset_summary(registry: Registry, asset: Asset) -> dict[str, Any]:
    """An ``AssetSummary`` (the same members as an ``AssociatedAssetsSummary``)."""
    out: dict[str, Any] = {
        "id": asset.id,
        "arn": asset_arn(asset.id),
        "name": asset.name,
        "assetModelId": asset.model_id,
        "creationDate": registry.created(asset),
        "lastUpdateDate": registry.updated(asset),
        "status": _active(),
        "hierarchies": [_hierarchy_json(h.id, h.name, h.external_id) for h in asset.hierarchies],
    }
    if asset.external_id:
        out["externalId"] = asset.external_id
    if asset.description:
        out["description"] = asset.description
    return out


def describe_asset_property(registry: Registry, asset_ref: str, property_ref: str) -> dict[str, Any]:
    """A ``DescribeAssetProperty`` response body: the asset's view of the property plus its model type."""
    asset = registry.asset(asset_ref)
    prop_id = registry.property(asset.id, property_ref).property_id
    prop = asset.property(prop_id)
    model_prop = registry.model(asset.model_id).property(prop_id)
    assert prop is not None and model_prop is not None  # the registry holds resolved assets
    out: dict[str, Any] = {"assetId": asset.id, "assetName": asset.name, "assetModelId": asset.model_id}
    if asset.external_id:
        out["assetExternalId"] = asset.external_id
    out["assetProperty"] = {**_asset_property_json(prop), "type": property_type_json(model_prop)}
    return out


def list_asset_model_properties(registry: Registry, model_ref: str, filter: str = "BASE") -> list[dict[str, Any]]:
    """``AssetModelPropertySummary`` items of a model, in its order (``BASE``: outside composite models)."""
    _check_property_filter(filter)
    model = registry.model(model_ref)
    out = []
    for composite, prop in _with_composites(model, filter):
        item = model_property_json(prop)
        if composite is not None:
            item["assetModelCompositeModelId"] = composite.id
        item["path"] = _path(model, composite, prop)
        out.append(item)
    return out


def list_asset_relationships(registry: Registry, asset_ref: str, traversal: str) -> list[dict[str, Any]]:
    """``AssetRelationshipSummary`` items: ``PATH_TO_ROOT``, the links from the asset up to its root asset."""
    if traversal != "PATH_TO_ROOT":
        raise _invalid(f"Invalid traversalType {traversal}. Valid values are PATH_TO_ROOT.")
    node = registry.asset(asset_ref)
    out = []
    while (parent := registry.parent(node.id)) is not None:
        out.append({"hierarchyInfo": {"parentAssetId": parent.id, "childAssetId": node.id},
                    "relationshipType": "HIERARCHY"})
        node = parent
    return out


def _check_property_filter(filter: str) -> None:
    if filter not in PROPERTY_FILTERS:
        raise _invalid(f"Invalid filter {filter}. Valid values are ALL and BASE.")


def list_asset_properties(registry: Registry, asset_ref: str, filter: str = "BASE") -> list[dict[str, Any]]:
    """``AssetPropertySummary`` items of an asset, in its model's order (``BASE``: outside composite models;
    the gateway's properties all are)."""
    _check_property_filter(filter)
    asset = registry.asset(asset_ref)
    model = registry.model(asset.model_id)
    out = []
    for composite, model_prop in _with_composites(model, filter):
        prop = asset.property(model_prop.id) if composite is None else None
        body = _asset_property_json(prop) if prop is not None else _composite_property_json(model_prop)
        item = {k: v for k, v in body.items() if k in ("id", "externalId", "alias", "unit", "notification")}
        if composite is not None:
            item["assetCompositeModelId"] = composite.id
        item["path"] = _path(asset, composite, model_prop)
        out.append(item)
    return out


def _with_composites(model: AssetModel, filter: str) -> list[tuple[CompositeModel | None, ModelProperty]]:
    """The model's properties, then (``ALL``) those of its composite models, each with its composite model."""
    base: list[tuple[CompositeModel | None, ModelProperty]] = [(None, p) for p in model.properties]
    return base + ([(c, p) for c in model.composite_models for p in c.properties] if filter == "ALL" else [])


def _path(owner: Asset | AssetModel, composite: CompositeModel | None, prop: ModelProperty) -> list[dict[str, str]]:
    middle = [{"id": composite.id, "name": composite.name}] if composite is not None else []
    return [{"id": owner.id, "name": owner.name}, *middle, {"id": prop.id, "name": prop.name}]


# --- composite models --------------------------------------------------------------------------------


def _composite_json(composite: CompositeModel, prop_json: Any) -> dict[str, Any]:
    """An ``AssetModelCompositeModel`` (``prop_json``: model_property_json) or an ``AssetCompositeModel``."""
    return _drop_none({"name": composite.name, "description": composite.description, "type": composite.type,
                       "properties": [prop_json(p) for p in composite.properties], "id": composite.id,
                       "externalId": composite.external_id})


def _composite_property_json(prop: ModelProperty) -> dict[str, Any]:
    """An asset's ``AssetProperty`` of a composite model: the model's, without alias (none maps onto it)."""
    return _drop_none({"id": prop.id, "name": prop.name, "externalId": prop.external_id, "dataType": prop.data_type,
                       "dataTypeSpec": prop.data_type_spec, "unit": prop.unit})


def _composite(model: AssetModel, ref: str, owner: str) -> CompositeModel:
    found = model.composite_model(ref)
    if found is None:
        raise ModelNotFound(f"Composite model {ref} does not exist in {owner}.", ref)
    return found


def list_asset_model_composite_models(registry: Registry, model_ref: str) -> list[dict[str, Any]]:
    """``AssetModelCompositeModelSummary`` items, in the model's order."""
    model = registry.model(model_ref)
    return [_drop_none({"id": c.id, "externalId": c.external_id, "name": c.name, "type": c.type,
                        "description": c.description,
                        "path": [{"id": model.id, "name": model.name}, {"id": c.id, "name": c.name}]})
            for c in model.composite_models]


def describe_asset_model_composite_model(registry: Registry, model_ref: str, ref: str) -> dict[str, Any]:
    """A ``DescribeAssetModelCompositeModel`` body."""
    model = registry.model(model_ref)
    c = _composite(model, ref, f"asset model {model.id}")
    return _drop_none({
        "assetModelId": model.id, "assetModelCompositeModelId": c.id, "assetModelCompositeModelExternalId":
        c.external_id, "assetModelCompositeModelPath": [{"id": model.id, "name": model.name},
                                                        {"id": c.id, "name": c.name}],
        "assetModelCompositeModelName": c.name, "assetModelCompositeModelDescription": c.description or c.name,
        "assetModelCompositeModelType": c.type,
        "assetModelCompositeModelProperties": [model_property_json(p) for p in c.properties],
        "assetModelCompositeModelSummaries": []})


def describe_asset_composite_model(registry: Registry, asset_ref: str, ref: str) -> dict[str, Any]:
    """A ``DescribeAssetCompositeModel`` body."""
    asset = registry.asset(asset_ref)
    c = _composite(registry.model(asset.model_id), ref, f"asset {asset.id}")
    return _drop_none({
        "assetId": asset.id, "assetCompositeModelId": c.id, "assetCompositeModelExternalId": c.external_id,
        "assetCompositeModelPath": [{"id": asset.id, "name": asset.name}, {"id": c.id, "name": c.name}],
        "assetCompositeModelName": c.name, "assetCompositeModelDescription": c.description or c.name,
        "assetCompositeModelType": c.type,
        "assetCompositeModelProperties": [_composite_property_json(p) for p in c.properties],
        "assetCompositeModelSummaries": []})


def _asset_property_json(prop: AssetProperty) -> dict[str, Any]:
    """An ``AssetProperty``: optional members only when set, as SiteWise omits them."""
    out: dict[str, Any] = {"id": prop.id, "name": prop.name}
    if prop.external_id:
        out["externalId"] = prop.external_id
    if prop.alias is not None:
        out["alias"] = prop.alias
    if prop.notification is not None:
        out["notification"] = {"topic": prop.notification.topic, "state": prop.notification.state}
    out["dataType"] = prop.data_type
    if prop.data_type_spec:
        out["dataTypeSpec"] = prop.data_type_spec
    if prop.unit is not None:
        out["unit"] = prop.unit
    return out


# --- control-plane answers ---------------------------------------------------------------------------


def asset_model_created(change: Change) -> dict[str, Any]:
    """The ``CreateAssetModel`` response: the model is ``ACTIVE`` at once, but SiteWise answers ``CREATING``."""
    return {"assetModelId": change.subject, "assetModelArn": model_arn(change.subject),
            "assetModelStatus": {"state": "CREATING"}}


def asset_created(change: Change) -> dict[str, Any]:
    """The ``CreateAsset`` response."""
    return {"assetId": change.subject, "assetArn": asset_arn(change.subject), "assetStatus": {"state": "CREATING"}}


def asset_model_updating(change: Change) -> dict[str, Any]:
    """The ``UpdateAssetModel`` response (the change is in force at once)."""
    return {"assetModelId": change.subject, "assetModelStatus": {"state": "UPDATING"}}


def asset_updating(change: Change) -> dict[str, Any]:
    """The ``UpdateAsset`` response."""
    return {"assetId": change.subject, "assetStatus": {"state": "UPDATING"}}


def asset_model_deleting(change: Change) -> dict[str, Any]:
    """The ``DeleteAssetModel`` response."""
    return {"assetModelId": change.subject, "assetModelStatus": {"state": "DELETING"}}


def asset_deleting(change: Change) -> dict[str, Any]:
    """The ``DeleteAsset`` response."""
    return {"assetId": change.subject, "assetStatus": {"state": "DELETING"}}


def _hierarchy_json(hid: str, name: str, external_id: str | None, child_model_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": hid, "name": name}
    if external_id:
        out["externalId"] = external_id
    if child_model_id is not None:
        out["childAssetModelId"] = child_model_id
    return out


def _active() -> dict[str, str]:
    return {"state": "ACTIVE"}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)
