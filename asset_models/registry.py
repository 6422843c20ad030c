"""The loaded asset models and assets, indexed for lookups and for SiteWise-shaped responses.

A :class:`Registry` is an immutable value built from files; the runtime owns it and
hands it to whoever needs it (no global state). The response builders return plain dicts in
exactly the shapes botocore's ``iotsitewise`` model defines, so the API layer only adds
paging and serialisation. Lists come back whole and stably sorted; paging is the API's job.

The control-plane operations (``create_asset_model``, ``create_asset``, ``update_asset_property``,
``associate_assets``...) never change a registry: each validates the request and returns a
:class:`Change` holding a *new* registry (copy-on-write), the ids to persist and the response
body. The runtime swaps its registry for the new one in a single assignment, so a reader sees
the whole change or none of it. They raise :class:`~sitewise_edge.errors.ApiError` with the
code SiteWise uses (:class:`ResourceError` for the codes whose body names the resource).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asset_models.model import (
    EXTERNAL_PREFIX,
    Asset,
    AssetModel,
    AssetProperty,
    Association,
    Catalog,
    Notification,
    PropertyKind,
    add_documents,
    alias_problem,
    check_text,
    expression_problems,
    is_id,
    load_catalog,
)
from sitewise_edge.errors import ApiError, ModelError

logger = logging.getLogger(__name__)

ARN_PREFIX = "arn:aws:iotsitewise:local:000000000000"
SYNTHETIC_PREFIX = "asset:"
LIST_FILTERS = ("ALL", "TOP_LEVEL")
DIRECTIONS = ("CHILD", "PARENT")
_ACTIVE = {"state": "ACTIVE"}


@dataclass(frozen=True, slots=True)
class PropertyRef:
    """One asset property, flattened: what the mapper, the store and the API need to know about a stream."""

    asset_id: str
    property_id: str
    asset_name: str
    property_name: str
    alias: str | None
    data_type: str
    kind: PropertyKind
    unit: str | None

    @property
    def stream(self) -> str:
        """The data-stream key: the alias, else a stable synthetic key (values may be written by id alone)."""
        return self.alias if self.alias is not None else synthetic_stream(self.asset_id, self.property_id)


def synthetic_stream(asset_id: str, property_id: str) -> str:
    return f"{SYNTHETIC_PREFIX}{asset_id}/{property_id}"


def _not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)


class ResourceError(ApiError):
    """ResourceAlreadyExistsException or ConflictingOperationException: the body also names the resource."""

    def __init__(self, code: str, message: str, resource_id: str, resource_arn: str) -> None:
        super().__init__(code, message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn

    @property
    def fields(self) -> dict[str, str]:
        """The error body's members besides ``message`` (the API adds them; it does not import this class)."""
        return {"resourceId": self.resource_id, "resourceArn": self.resource_arn}


@dataclass(frozen=True, slots=True)
class Change:
    """What a control-plane operation did: the new registry, the objects to persist, the response body.

    ``models`` and ``assets`` are the ids created, changed or deleted (absent from ``registry`` when
    deleted); ``associations`` tells whether the hierarchy links changed.
    """

    registry: Registry
    response: dict[str, Any]
    models: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()
    associations: bool = False


class Registry:
    """Asset models and assets by id, external id and alias, plus the hierarchy tree."""

    def __init__(self, catalog: Catalog, loaded_at: float | None = None,
                 config_sources: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.loaded_at = time.time() if loaded_at is None else loaded_at
        # Models and assets defined in the configuration's files (id -> file): never deleted through the API.
        self.config_sources: Mapping[str, str] = config_sources or {}
        self._models = {m.id: m for m in catalog.models}
        self._assets = {a.id: a for a in catalog.assets}
        self._model_ext = {m.external_id: m for m in catalog.models if m.external_id}
        self._asset_ext = {a.external_id: a for a in catalog.assets if a.external_id}
        self._refs: dict[tuple[str, str], PropertyRef] = {}
        self._by_alias: dict[str, PropertyRef] = {}
        for asset in catalog.assets:
            for prop in asset.properties:
                ref = PropertyRef(asset.id, prop.id, asset.name, prop.name, prop.alias, prop.data_type,
                                  prop.kind, prop.unit)
                self._refs[(asset.id, prop.id)] = ref
                if prop.alias is not None:
                    self._by_alias[prop.alias] = ref
        self._parent: dict[str, tuple[str, str]] = {}  # child -> (parent, hierarchy)
        self._children: dict[str, list[tuple[str, str]]] = {}  # parent -> [(hierarchy, child)]
        for assoc in catalog.associations:
            self._parent[assoc.child_id] = (assoc.parent_id, assoc.hierarchy_id)
            self._children.setdefault(assoc.parent_id, []).append((assoc.hierarchy_id, assoc.child_id))

    @classmethod
    def load(cls, paths: Sequence[Path], loaded_at: float | None = None) -> Registry:
        """Load files and folders of SiteWise JSON; raises ModelError listing every problem."""
        return cls(load_catalog(paths), loaded_at)

    @classmethod
    def empty(cls) -> Registry:
        return cls(Catalog())

    # --- lookups -------------------------------------------------------------------------

    def models(self) -> list[AssetModel]:
        return sorted(self._models.values(), key=lambda m: (m.name, m.id))

    def assets(self) -> list[Asset]:
        return sorted(self._assets.values(), key=lambda a: (a.name, a.id))

    def model(self, ref: str) -> AssetModel:
        """A model by UUID or ``externalId:...``; ResourceNotFoundException otherwise."""
        found = self._model_ext.get(ref[len(EXTERNAL_PREFIX):]) if ref.startswith(EXTERNAL_PREFIX) \
            else self._models.get(ref)
        if found is None:
            raise _not_found(f"Asset model {ref} does not exist.")
        return found

    def asset(self, ref: str) -> Asset:
        """An asset by UUID or ``externalId:...``; ResourceNotFoundException otherwise."""
        found = self._asset_ext.get(ref[len(EXTERNAL_PREFIX):]) if ref.startswith(EXTERNAL_PREFIX) \
            else self._assets.get(ref)
        if found is None:
            raise _not_found(f"Asset {ref} does not exist.")
        return found

    def property(self, asset_id: str, property_id: str) -> PropertyRef:
        """A property of an asset (asset and property by UUID or ``externalId:...``)."""
        asset = self.asset(asset_id)
        if property_id.startswith(EXTERNAL_PREFIX):
            ext = property_id[len(EXTERNAL_PREFIX):]
            prop = next((p for p in asset.properties if p.external_id == ext), None)
            property_id = prop.id if prop is not None else property_id
        ref = self._refs.get((asset.id, property_id))
        if ref is None:
            raise _not_found(f"Asset property {property_id} does not exist in asset {asset.id}.")
        return ref

    def property_by_alias(self, alias: str) -> PropertyRef | None:
        return self._by_alias.get(alias)

    def stream_of(self, asset_id: str, property_id: str) -> str:
        return self.property(asset_id, property_id).stream

    def property_of_stream(self, stream: str) -> PropertyRef | None:
        """The property a stream key belongs to, or None for a disassociated stream."""
        ref = self._by_alias.get(stream)
        if ref is None and stream.startswith(SYNTHETIC_PREFIX):
            asset_id, _, property_id = stream[len(SYNTHETIC_PREFIX):].partition("/")
            ref = self._refs.get((asset_id, property_id))
        return ref

    def measurement_aliases(self) -> list[str]:
        """Every alias of a measurement, sorted: the streams a connector may feed."""
        return sorted(a for a, r in self._by_alias.items() if r.kind is PropertyKind.MEASUREMENT)

    def children(self, asset_id: str, hierarchy_id: str | None = None) -> list[Asset]:
        return self._sorted([self._assets[c] for h, c in self._children.get(asset_id, ())
                             if hierarchy_id is None or h == hierarchy_id])

    def parent(self, asset_id: str) -> Asset | None:
        link = self._parent.get(asset_id)
        return self._assets[link[0]] if link else None

    # --- responses -----------------------------------------------------------------------

    def describe_asset_model(self, ref: str, exclude_properties: bool = False) -> dict[str, Any]:
        """A ``DescribeAssetModel`` response body."""
        model = self.model(ref)
        out: dict[str, Any] = {
            "assetModelId": model.id,
            "assetModelArn": model_arn(model.id),
            "assetModelName": model.name,
            "assetModelType": model.model_type,
            # Required in the response; a file may have none, and SiteWise's Description needs 1+ characters.
            "assetModelDescription": model.description or model.name,
            "assetModelProperties": [] if exclude_properties else [p.to_json() for p in model.properties],
            "assetModelHierarchies": [_hierarchy_json(h.id, h.name, h.external_id, h.child_model_id)
                                      for h in model.hierarchies],
            "assetModelCompositeModels": [],
            "assetModelCreationDate": self._created(model),
            "assetModelLastUpdateDate": self._updated(model),
            "assetModelStatus": dict(_ACTIVE),
            "assetModelVersion": "1",
        }
        if model.external_id:
            out["assetModelExternalId"] = model.external_id
        return out

    def list_asset_models(self, asset_model_types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``AssetModelSummary`` items, by name."""
        out = []
        for model in self.models():
            if asset_model_types and model.model_type not in asset_model_types:
                continue
            summary: dict[str, Any] = {
                "id": model.id,
                "arn": model_arn(model.id),
                "name": model.name,
                "assetModelType": model.model_type,
                "description": model.description or model.name,
                "creationDate": self._created(model),
                "lastUpdateDate": self._updated(model),
                "status": dict(_ACTIVE),
                "version": "1",
            }
            if model.external_id:
                summary["externalId"] = model.external_id
            out.append(summary)
        return out

    def describe_asset(self, ref: str, exclude_properties: bool = False) -> dict[str, Any]:
        """A ``DescribeAsset`` response body."""
        asset = self.asset(ref)
        out: dict[str, Any] = {
            "assetId": asset.id,
            "assetArn": asset_arn(asset.id),
            "assetName": asset.name,
            "assetModelId": asset.model_id,
            "assetProperties": [] if exclude_properties else [_asset_property_json(p) for p in asset.properties],
            "assetHierarchies": [_hierarchy_json(h.id, h.name, h.external_id) for h in asset.hierarchies],
            "assetCompositeModels": [],
            "assetCreationDate": self._created(asset),
            "assetLastUpdateDate": self._updated(asset),
            "assetStatus": dict(_ACTIVE),
        }
        if asset.external_id:
            out["assetExternalId"] = asset.external_id
        if asset.description:
            out["assetDescription"] = asset.description
        return out

    def list_assets(self, asset_model_id: str | None = None, filter: str = "ALL") -> list[dict[str, Any]]:
        """``AssetSummary`` items: ALL assets of a model (assetModelId required), or TOP_LEVEL (no parent)."""
        if filter not in LIST_FILTERS:
            raise _invalid(f"Invalid filter {filter}. Valid values are ALL and TOP_LEVEL.")
        if filter == "ALL" and not asset_model_id:
            raise _invalid("assetModelId is required when filter is ALL.")
        model_id = self.model(asset_model_id).id if asset_model_id else None
        chosen = [a for a in self._assets.values()
                  if (model_id is None or a.model_id == model_id)
                  and (filter == "ALL" or a.id not in self._parent)]
        return [self._summary(a) for a in self._sorted(chosen)]

    def list_associated_assets(self, asset_id: str, hierarchy_id: str | None = None,
                               direction: str = "CHILD") -> list[dict[str, Any]]:
        """``AssociatedAssetsSummary`` items: the children (under one hierarchy, or all) or the parent."""
        if direction not in DIRECTIONS:
            raise _invalid(f"Invalid traversalDirection {direction}. Valid values are CHILD and PARENT.")
        asset = self.asset(asset_id)
        if hierarchy_id is not None and direction == "CHILD":
            hierarchy = self.model(asset.model_id).hierarchy(hierarchy_id)
            if hierarchy is None or hierarchy_id == hierarchy.name:  # a name is no id in the API
                raise _not_found(f"Hierarchy {hierarchy_id} does not exist in asset {asset.id}.")
            hierarchy_id = hierarchy.id
        if direction == "CHILD":
            return [self._summary(a) for a in self.children(asset.id, hierarchy_id)]
        parent = self.parent(asset.id)
        return [self._summary(parent)] if parent is not None else []

    def _summary(self, asset: Asset) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": asset.id,
            "arn": asset_arn(asset.id),
            "name": asset.name,
            "assetModelId": asset.model_id,
            "creationDate": self._created(asset),
            "lastUpdateDate": self._updated(asset),
            "status": dict(_ACTIVE),
            "hierarchies": [_hierarchy_json(h.id, h.name, h.external_id) for h in asset.hierarchies],
        }
        if asset.external_id:
            out["externalId"] = asset.external_id
        if asset.description:
            out["description"] = asset.description
        return out

    @staticmethod
    def _sorted(assets: list[Asset]) -> list[Asset]:
        return sorted(assets, key=lambda a: (a.name, a.id))

    def _created(self, item: Asset | AssetModel) -> float:
        return item.created if item.created is not None else self.loaded_at

    def _updated(self, item: Asset | AssetModel) -> float:
        return item.updated if item.updated is not None else self._created(item)

    def describe_asset_property(self, asset_ref: str, property_ref: str) -> dict[str, Any]:
        """A ``DescribeAssetProperty`` response body: the asset's view of the property plus its model type."""
        asset = self.asset(asset_ref)
        prop_id = self.property(asset.id, property_ref).property_id
        prop = asset.property(prop_id)
        model_prop = self.model(asset.model_id).property(prop_id)
        assert prop is not None and model_prop is not None  # the registry holds resolved assets
        out: dict[str, Any] = {"assetId": asset.id, "assetName": asset.name, "assetModelId": asset.model_id}
        if asset.external_id:
            out["assetExternalId"] = asset.external_id
        out["assetProperty"] = {**_asset_property_json(prop), "type": model_prop.type_json()}
        return out

    # --- control plane: each returns a Change (a new registry), never modifies this one --------

    def _with(self, catalog: Catalog) -> Registry:
        return Registry(catalog, self.loaded_at, self.config_sources)

    def create_asset_model(self, body: Mapping[str, Any], now: float) -> Change:
        """``CreateAssetModel``: checks as at load, plus every transform and metric compiled."""
        _require_text(body, "assetModelName")
        model_id = _optional_id(body, "assetModelId")
        if model_id is not None and model_id in self._models:
            raise ResourceError("ResourceAlreadyExistsException", f"Asset model {model_id} already exists.",
                                model_id, model_arn(model_id))
        ext = body.get("assetModelExternalId")
        if isinstance(ext, str) and ext in self._model_ext:
            found = self._model_ext[ext]
            raise ResourceError("ResourceAlreadyExistsException",
                                f"An asset model with the external id {ext} already exists.", found.id,
                                model_arn(found.id))
        named = next((m for m in self._models.values() if m.name == body["assetModelName"]), None)
        if named is not None:
            raise ResourceError("ResourceAlreadyExistsException",
                                f"Another asset model with the name {named.name} already exists.", named.id,
                                model_arn(named.id))
        hierarchies = body.get("assetModelHierarchies") or []
        for h in hierarchies if isinstance(hierarchies, list) else []:
            child = h.get("childAssetModelId") if isinstance(h, Mapping) else None
            if isinstance(child, str) and child != model_id:  # a model may hold its own kind (trees of areas)
                self.model(_custom_id(child, "childAssetModelId"))
        doc = {k: v for k, v in body.items() if k not in ("clientToken", "tags")}
        doc.update(assetModelId=model_id or str(uuid.uuid4()), assetModelCreationDate=now,
                   assetModelLastUpdateDate=now)
        catalog = _added(self.catalog, "CreateAssetModel", doc)
        model = catalog.models[-1]
        problems = expression_problems(model, {m.id: m for m in catalog.models}, f"model '{model.name}'")
        if problems:
            raise _invalid("; ".join(problems))
        return Change(self._with(catalog), {"assetModelId": model.id, "assetModelArn": model_arn(model.id),
                                            "assetModelStatus": {"state": "CREATING"}},
                      models=frozenset({model.id}))

    def create_asset(self, body: Mapping[str, Any], now: float) -> Change:
        """``CreateAsset`` from an ``ASSET_MODEL``; every property starts without an alias."""
        _require_text(body, "assetName")
        model = self.model(_custom_id(_require_text(body, "assetModelId"), "assetModelId"))
        if model.model_type != "ASSET_MODEL":
            raise _invalid(f"Asset model {model.id} is a {model.model_type}; assets are created from ASSET_MODEL "
                           "models only.")
        asset_id = _optional_id(body, "assetId")
        if asset_id is not None and asset_id in self._assets:
            raise ResourceError("ResourceAlreadyExistsException", f"Asset {asset_id} already exists.",
                                asset_id, asset_arn(asset_id))
        ext = body.get("assetExternalId")
        if isinstance(ext, str) and ext in self._asset_ext:
            found = self._asset_ext[ext]
            raise ResourceError("ResourceAlreadyExistsException",
                                f"An asset with the external id {ext} already exists.", found.id, asset_arn(found.id))
        doc = {k: body[k] for k in ("assetName", "assetDescription", "assetExternalId") if body.get(k) is not None}
        doc.update(assetId=asset_id or str(uuid.uuid4()), assetModelId=model.id, assetCreationDate=now,
                   assetLastUpdateDate=now)
        catalog = _added(self.catalog, "CreateAsset", doc)
        asset = catalog.assets[-1]
        return Change(self._with(catalog), {"assetId": asset.id, "assetArn": asset_arn(asset.id),
                                            "assetStatus": {"state": "CREATING"}},
                      assets=frozenset({asset.id}))

    def update_asset_property(self, asset_ref: str, property_ref: str, body: Mapping[str, Any],
                              now: float) -> Change:
        """``UpdateAssetProperty``: overwrites alias, notification state and unit; an omitted alias is removed.

        The alias is the property's data-stream key: values already stored under the new alias
        become the property's history.
        """
        asset = self.asset(asset_ref)
        ref = self.property(asset.id, property_ref)
        alias = body.get("propertyAlias")
        if alias is not None:
            err = alias_problem(alias)
            if err:
                raise _invalid(f"Invalid propertyAlias: {err}.")
            owner = self._by_alias.get(alias)
            if owner is not None and (owner.asset_id, owner.property_id) != (asset.id, ref.property_id):
                raise _invalid(f"The alias {alias} is already in use by property {owner.property_id} "
                               f"({owner.property_name}) of asset {owner.asset_id} ({owner.asset_name}).")
        state = body.get("propertyNotificationState") or "DISABLED"
        if state not in ("ENABLED", "DISABLED"):
            raise _invalid(f"Invalid propertyNotificationState {state!r}; expected ENABLED or DISABLED.")
        unit = body.get("propertyUnit")
        if unit is not None and (err := check_text(unit, "propertyUnit")):
            raise _invalid(err)
        model_prop = self.model(asset.model_id).property(ref.property_id)
        topic = (f"$aws/sitewise/asset-models/{asset.model_id}/assets/{asset.id}/properties/{ref.property_id}")
        props = tuple(dataclasses.replace(p, alias=alias, notification=Notification(topic, state),
                                          unit=unit if unit is not None else model_prop.unit if model_prop else p.unit)
                      if p.id == ref.property_id else p for p in asset.properties)
        changed = dataclasses.replace(asset, properties=props, updated=now)
        catalog = dataclasses.replace(self.catalog,
                                      assets=tuple(changed if a.id == asset.id else a for a in self.catalog.assets))
        return Change(self._with(catalog), {}, assets=frozenset({asset.id}))

    def associate_assets(self, parent_ref: str, body: Mapping[str, Any]) -> Change:
        """``AssociateAssets``: a child of the hierarchy's model, one parent per asset, no cycle."""
        parent, hierarchy_id, child = self._link(parent_ref, body)
        if any(a.child_id == child.id and a.parent_id == parent.id and a.hierarchy_id == hierarchy_id
               for a in self.catalog.associations):
            raise ResourceError("ResourceAlreadyExistsException",
                                f"Asset {child.id} is already associated with asset {parent.id} through hierarchy "
                                f"{hierarchy_id}.", child.id, asset_arn(child.id))
        hierarchy = self.model(parent.model_id).hierarchy(hierarchy_id)
        assert hierarchy is not None
        if child.model_id != hierarchy.child_model_id:
            raise _invalid(f"Asset {child.id} is of asset model {child.model_id}, but hierarchy {hierarchy.id} "
                           f"({hierarchy.name}) holds assets of asset model {hierarchy.child_model_id}.")
        if child.id in self._parent:
            raise _invalid(f"Asset {child.id} is already associated with parent asset {self._parent[child.id][0]}; "
                           "an asset has at most one parent.")
        node: Asset | None = parent
        while node is not None:
            if node.id == child.id:
                raise _invalid(f"Associating asset {child.id} under asset {parent.id} would make a cycle.")
            node = self.parent(node.id)
        catalog = dataclasses.replace(
            self.catalog, associations=(*self.catalog.associations, Association(parent.id, hierarchy_id, child.id)))
        return Change(self._with(catalog), {}, associations=True)

    def disassociate_assets(self, parent_ref: str, body: Mapping[str, Any]) -> Change:
        parent, hierarchy_id, child = self._link(parent_ref, body)
        link = Association(parent.id, hierarchy_id, child.id)
        if link not in self.catalog.associations:
            raise _not_found(f"Asset {child.id} is not associated with asset {parent.id} through hierarchy "
                             f"{hierarchy_id}.")
        catalog = dataclasses.replace(self.catalog,
                                      associations=tuple(a for a in self.catalog.associations if a != link))
        return Change(self._with(catalog), {}, associations=True)

    def _link(self, parent_ref: str, body: Mapping[str, Any]) -> tuple[Asset, str, Asset]:
        parent = self.asset(parent_ref)
        hierarchy_ref = _custom_id(_require_text(body, "hierarchyId"), "hierarchyId")
        child = self.asset(_custom_id(_require_text(body, "childAssetId"), "childAssetId"))
        hierarchy = self.model(parent.model_id).hierarchy(hierarchy_ref)
        if hierarchy is None or hierarchy_ref == hierarchy.name:  # a name is no id in the API
            raise _not_found(f"Hierarchy {hierarchy_ref} does not exist in asset {parent.id}.")
        return parent, hierarchy.id, child

    def delete_asset(self, ref: str) -> Change:
        """``DeleteAsset``: refused while the asset has a parent or children, or if a configuration file defines it."""
        asset = self.asset(ref)
        self._deletable(asset.id, "Asset")
        if asset.id in self._parent or self._children.get(asset.id):
            raise ResourceError("ConflictingOperationException",
                                f"Asset {asset.id} is associated with other assets; disassociate it first.",
                                asset.id, asset_arn(asset.id))
        catalog = dataclasses.replace(self.catalog, assets=tuple(a for a in self.catalog.assets if a.id != asset.id))
        return Change(self._with(catalog), {"assetId": asset.id, "assetStatus": {"state": "DELETING"}},
                      assets=frozenset({asset.id}))

    def delete_asset_model(self, ref: str) -> Change:
        """``DeleteAssetModel``: refused while assets of it exist or another model's hierarchy holds it."""
        model = self.model(ref)
        self._deletable(model.id, "Asset model")
        used = next((a for a in self._assets.values() if a.model_id == model.id), None)
        parent = next((m for m in self._models.values() for h in m.hierarchies if h.child_model_id == model.id), None)
        if used is not None or parent is not None:
            why = f"asset {used.id} was created from it" if used else f"asset model {parent.id} has a hierarchy of it"  # type: ignore[union-attr]
            raise ResourceError("ConflictingOperationException", f"Asset model {model.id} is in use: {why}.",
                                model.id, model_arn(model.id))
        catalog = dataclasses.replace(self.catalog, models=tuple(m for m in self.catalog.models if m.id != model.id))
        return Change(self._with(catalog), {"assetModelId": model.id, "assetModelStatus": {"state": "DELETING"}},
                      models=frozenset({model.id}))

    def _deletable(self, object_id: str, what: str) -> None:
        source = self.config_sources.get(object_id)
        if source is not None:
            raise _invalid(f"{what} {object_id} is defined in the configuration file {source}, which the API does "
                           "not change; remove it there.")


def asset_arn(asset_id: str) -> str:
    return f"{ARN_PREFIX}:asset/{asset_id}"


def model_arn(model_id: str) -> str:
    return f"{ARN_PREFIX}:asset-model/{model_id}"


def _hierarchy_json(hid: str, name: str, external_id: str | None, child_model_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": hid, "name": name}
    if external_id:
        out["externalId"] = external_id
    if child_model_id is not None:
        out["childAssetModelId"] = child_model_id
    return out


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


def _require_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise _invalid(f"{key} is required.")
    err = check_text(value, key, max_len=256 if key.endswith("Name") else 139)
    if err:
        raise _invalid(err)
    return str(value)


def _optional_id(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not is_id(value):
        raise _invalid(f"{key} {value!r} is not a UUID (36 lower-case hex characters, not all zero).")
    return value


def _custom_id(ref: str, key: str) -> str:
    """A ``CustomID`` (UUID or ``externalId:...``), as the API takes references; names are refused."""
    if not (is_id(ref) or (ref.startswith(EXTERNAL_PREFIX) and len(ref) > len(EXTERNAL_PREFIX))):
        raise _invalid(f"{key} {ref!r} is neither a UUID nor externalId:<external id>.")
    return ref


def _added(catalog: Catalog, operation: str, doc: Mapping[str, Any]) -> Catalog:
    try:
        return add_documents(catalog, [(operation, doc)])
    except ModelError as exc:
        raise _invalid("; ".join(line.removeprefix(f"{operation}: ") for line in str(exc).splitlines())) from None
