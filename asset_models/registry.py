"""The loaded asset models and assets, indexed for lookups and for SiteWise-shaped responses.

A :class:`Registry` is an immutable value built once from files; the runtime owns it and
hands it to whoever needs it (no global state). The response builders return plain dicts in
exactly the shapes botocore's ``iotsitewise`` model defines, so the API layer only adds
paging and serialisation. Lists come back whole and stably sorted; paging is the API's job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asset_models.model import (
    EXTERNAL_PREFIX,
    Asset,
    AssetModel,
    AssetProperty,
    Catalog,
    PropertyKind,
    load_catalog,
)
from sitewise_edge.errors import ApiError

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


class Registry:
    """Asset models and assets by id, external id and alias, plus the hierarchy tree."""

    def __init__(self, catalog: Catalog, loaded_at: float | None = None) -> None:
        self.catalog = catalog
        self.loaded_at = time.time() if loaded_at is None else loaded_at
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
            "assetModelCreationDate": self.loaded_at,
            "assetModelLastUpdateDate": self.loaded_at,
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
                "creationDate": self.loaded_at,
                "lastUpdateDate": self.loaded_at,
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
            "assetCreationDate": self.loaded_at,
            "assetLastUpdateDate": self.loaded_at,
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
            "creationDate": self.loaded_at,
            "lastUpdateDate": self.loaded_at,
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
