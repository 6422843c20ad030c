"""The loaded asset models and assets, indexed for lookups, and the control-plane operations over them.

    registry = Registry(build_catalog(documents))          # the runtime loads the documents
    registry.asset("externalId:press-1").properties
    registry.property_by_alias("/plant1/line1/press1/temperature")   # -> PropertyRef, or None
    change = registry.create_asset(body, now=time.time())  # -> Change(new registry, ids to persist)

A :class:`Registry` is an immutable value; the runtime owns it and hands it to whoever needs it
(no global state). Queries return the typed values of :mod:`asset_models.model`, lists whole and
stably sorted (by name, then id); rendering them as SiteWise responses and paging are the API's job
(``api/sitewise/render.py``).

The control-plane operations (``create_asset_model``, ``create_asset``, ``update_asset_property``,
``associate_assets``...) never change a registry: each validates the request and returns a
:class:`Change` holding a *new* registry (copy-on-write) and the ids to persist. The runtime swaps
its registry for the new one in a single assignment, so a reader sees the whole change or none of
it. They raise the model layer's errors (:mod:`asset_models.errors`): :class:`ModelNotFound`,
:class:`ModelInvalid`, :class:`ModelExists` and :class:`ModelInUse`, which the API maps to
SiteWise's error codes.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asset_models.checks import alias_problem, expression_problems, is_external_id, is_id, text_problem
from asset_models.documents import add_documents
from asset_models.errors import ModelExists, ModelInUse, ModelInvalid, ModelNotFound
from asset_models.model import (
    EXTERNAL_PREFIX,
    Asset,
    AssetHierarchy,
    AssetModel,
    AssetProperty,
    Association,
    Catalog,
    ModelHierarchy,
    Notification,
    PropertyKind,
)

log = logging.getLogger(__name__)

SYNTHETIC_PREFIX = "asset:"


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
    """The stream key of a property without an alias: ``asset:<assetId>/<propertyId>``."""
    return f"{SYNTHETIC_PREFIX}{asset_id}/{property_id}"


@dataclass(frozen=True, slots=True)
class Change:
    """What a control-plane operation did: the new registry and the objects to persist.

    ``subject`` is the id of the model or asset the operation created, changed or deleted (for
    associations: the child asset). ``models`` and ``assets`` are the ids to persist (absent from
    ``registry`` when deleted); ``associations`` tells whether the hierarchy links changed.
    ``response`` is the body to answer with: the API fills it in (:meth:`answered`), the gateway
    remembers it for ``clientToken`` retries.
    """

    registry: Registry
    subject: str
    models: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()
    associations: bool = False
    response: dict[str, Any] = field(default_factory=dict)

    def answered(self, response: dict[str, Any]) -> Change:
        """This change with its response body."""
        return dataclasses.replace(self, response=response)


class Registry:
    """Asset models and assets by id, external id and alias, plus the hierarchy tree."""

    def __init__(self, catalog: Catalog, loaded_at: float = 0.0,
                 config_sources: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.loaded_at = loaded_at  # when its files were read (wall-clock seconds): the dates of what they define
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
    def empty(cls) -> Registry:
        return cls(Catalog())

    # --- lookups -------------------------------------------------------------------------

    def models(self) -> list[AssetModel]:
        return sorted(self._models.values(), key=lambda m: (m.name, m.id))

    def assets(self, model_id: str | None = None, *, top_level: bool = False) -> list[Asset]:
        """Assets (of one model, by UUID; only those without a parent if ``top_level``), by name."""
        return self._sorted([a for a in self._assets.values()
                             if (model_id is None or a.model_id == model_id)
                             and not (top_level and a.id in self._parent)])

    def model(self, ref: str) -> AssetModel:
        """A model by UUID or ``externalId:...``; ModelNotFound otherwise."""
        found = self._model_ext.get(ref[len(EXTERNAL_PREFIX):]) if ref.startswith(EXTERNAL_PREFIX) \
            else self._models.get(ref)
        if found is None:
            raise ModelNotFound(f"Asset model {ref} does not exist.", ref)
        return found

    def asset(self, ref: str) -> Asset:
        """An asset by UUID or ``externalId:...``; ModelNotFound otherwise."""
        found = self._asset_ext.get(ref[len(EXTERNAL_PREFIX):]) if ref.startswith(EXTERNAL_PREFIX) \
            else self._assets.get(ref)
        if found is None:
            raise ModelNotFound(f"Asset {ref} does not exist.", ref)
        return found

    def hierarchy(self, asset: Asset, ref: str) -> ModelHierarchy:
        """A hierarchy of the asset's model by UUID or ``externalId:...`` (a name is no id in the API)."""
        found = self.model(asset.model_id).hierarchy(ref)
        if found is None or ref == found.name:
            raise ModelNotFound(f"Hierarchy {ref} does not exist in asset {asset.id}.", ref)
        return found

    def property(self, asset_id: str, property_id: str) -> PropertyRef:
        """A property of an asset (asset and property by UUID or ``externalId:...``); ModelNotFound otherwise."""
        asset = self.asset(asset_id)
        if property_id.startswith(EXTERNAL_PREFIX):
            ext = property_id[len(EXTERNAL_PREFIX):]
            prop = next((p for p in asset.properties if p.external_id == ext), None)
            property_id = prop.id if prop is not None else property_id
        ref = self._refs.get((asset.id, property_id))
        if ref is None:
            raise ModelNotFound(f"Asset property {property_id} does not exist in asset {asset.id}.", property_id)
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

    def created(self, item: Asset | AssetModel) -> float:
        """When the object was created (epoch seconds): as its file says, else when the registry was loaded."""
        return item.created if item.created is not None else self.loaded_at

    def updated(self, item: Asset | AssetModel) -> float:
        """When the object last changed (epoch seconds); its creation if nothing says otherwise."""
        return item.updated if item.updated is not None else self.created(item)

    @staticmethod
    def _sorted(assets: list[Asset]) -> list[Asset]:
        return sorted(assets, key=lambda a: (a.name, a.id))

    # --- control plane: each returns a Change (a new registry), never modifies this one --------

    def _with(self, catalog: Catalog) -> Registry:
        return Registry(catalog, self.loaded_at, self.config_sources)

    def create_asset_model(self, body: Mapping[str, Any], now: float) -> Change:
        """``CreateAssetModel``: checks as at load, plus every transform and metric compiled."""
        _require_text(body, "assetModelName")
        model_id = _optional_id(body, "assetModelId")
        if model_id is not None and model_id in self._models:
            raise ModelExists(f"Asset model {model_id} already exists.", model_id, "asset-model")
        ext = body.get("assetModelExternalId")
        if isinstance(ext, str) and ext in self._model_ext:
            found = self._model_ext[ext]
            raise ModelExists(f"An asset model with the external id {ext} already exists.", found.id, "asset-model")
        named = next((m for m in self._models.values() if m.name == body["assetModelName"]), None)
        if named is not None:
            raise ModelExists(f"Another asset model with the name {named.name} already exists.", named.id,
                              "asset-model")
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
            raise ModelInvalid("; ".join(problems))
        return Change(self._with(catalog), model.id, models=frozenset({model.id}))

    def create_asset(self, body: Mapping[str, Any], now: float) -> Change:
        """``CreateAsset`` from an ``ASSET_MODEL``; every property starts without an alias."""
        _require_text(body, "assetName")
        model = self.model(_custom_id(_require_text(body, "assetModelId"), "assetModelId"))
        if model.model_type != "ASSET_MODEL":
            raise ModelInvalid(f"Asset model {model.id} is a {model.model_type}; assets are created from "
                               "ASSET_MODEL models only.")
        asset_id = _optional_id(body, "assetId")
        if asset_id is not None and asset_id in self._assets:
            raise ModelExists(f"Asset {asset_id} already exists.", asset_id, "asset")
        ext = body.get("assetExternalId")
        if isinstance(ext, str) and ext in self._asset_ext:
            found = self._asset_ext[ext]
            raise ModelExists(f"An asset with the external id {ext} already exists.", found.id, "asset")
        doc = {k: body[k] for k in ("assetName", "assetDescription", "assetExternalId") if body.get(k) is not None}
        doc.update(assetId=asset_id or str(uuid.uuid4()), assetModelId=model.id, assetCreationDate=now,
                   assetLastUpdateDate=now)
        catalog = _added(self.catalog, "CreateAsset", doc)
        asset = catalog.assets[-1]
        return Change(self._with(catalog), asset.id, assets=frozenset({asset.id}))

    def update_asset(self, asset_ref: str, body: Mapping[str, Any], now: float) -> Change:
        """``UpdateAsset``: name and description (an omitted description is removed); an external id may be
        given to an asset without one, never changed."""
        asset = self.asset(asset_ref)
        name = _require_text(body, "assetName")
        description = body.get("assetDescription")
        if description is not None and (err := text_problem(description, "assetDescription", max_len=2048)):
            raise ModelInvalid(err)
        ext = self._new_external_id(body, "assetExternalId", asset.external_id, f"asset {asset.id}")
        clash = self._asset_ext.get(ext) if ext else None
        if clash is not None and clash.id != asset.id:
            raise ModelExists(f"An asset with the external id {ext} already exists.", clash.id, "asset")
        changed = dataclasses.replace(asset, name=name, description=description, external_id=ext, updated=now)
        return self._with_asset(changed)

    def update_asset_model(self, model_ref: str, body: Mapping[str, Any], now: float) -> Change:
        """``UpdateAssetModel``: the model's properties, hierarchies and composite models replaced by the request's.

        SiteWise's rules: a property listed with its id is that property (its dataType and its kind, measurement,
        attribute, transform or metric, cannot change); one not listed is removed (unless another model's
        expression reads it through a hierarchy), one without an id is new. A hierarchy that holds child assets
        cannot be removed, nor point at another model. The external id may be set once. Every asset of the
        model follows: new properties without an alias, removed ones gone, kept ones keep alias and notification.
        """
        model = self.model(model_ref)
        self._deletable(model.id, "Asset model", "change")
        name = _require_text(body, "assetModelName")
        named = next((m for m in self._models.values() if m.name == name and m.id != model.id), None)
        if named is not None:
            raise ModelExists(f"Another asset model with the name {name} already exists.", named.id, "asset-model")
        ext = self._new_external_id(body, "assetModelExternalId", model.external_id, f"asset model {model.id}")
        if ext and ext in self._model_ext and self._model_ext[ext].id != model.id:
            raise ModelExists(f"An asset model with the external id {ext} already exists.",
                              self._model_ext[ext].id, "asset-model")
        doc = {k: v for k, v in body.items() if k not in ("clientToken", "assetModelId")}
        doc.update(assetModelId=model.id, assetModelType=model.model_type, assetModelExternalId=ext,
                   assetModelCreationDate=self.created(model), assetModelLastUpdateDate=now)
        mine = {a.id for a in self._assets.values() if a.model_id == model.id}
        rest = dataclasses.replace(self.catalog, models=tuple(m for m in self.catalog.models if m.id != model.id),
                                   assets=tuple(a for a in self.catalog.assets if a.id not in mine))
        new = _added(rest, "UpdateAssetModel", {k: v for k, v in doc.items() if v is not None}).models[-1]
        self._check_model_update(model, new)
        models = {**self._models, new.id: new}
        problems = expression_problems(new, models, f"model '{new.name}'")
        if problems:
            raise ModelInvalid("; ".join(problems))
        assets = tuple(_follow(a, new, now) if a.id in mine else a for a in self.catalog.assets)
        catalog = dataclasses.replace(self.catalog, assets=assets,
                                      models=tuple(new if m.id == model.id else m for m in self.catalog.models))
        return Change(Registry(catalog, self.loaded_at, self.config_sources), model.id,
                      models=frozenset({model.id}), assets=frozenset(mine))

    def _check_model_update(self, old: AssetModel, new: AssetModel) -> None:
        kept = {p.id: p for p in new.properties}
        for prop in old.properties:
            now = kept.get(prop.id)
            if now is None:
                reader = next(((m, p) for m in self._models.values() if m.id != old.id for p in m.properties
                               for v in p.variables if v.hierarchy_id is not None
                               and (h := m.hierarchy(v.hierarchy_id)) is not None and h.child_model_id == old.id
                               and old.property(v.property_id or "") is prop), None)
                if reader is not None:
                    raise ModelInvalid(f"Property {prop.id} ({prop.name}) cannot be removed: property "
                                       f"'{reader[1].name}' of asset model {reader[0].id} ({reader[0].name}) reads it "
                                       "through a hierarchy.")
            elif (now.data_type, now.kind) != (prop.data_type, prop.kind):
                raise ModelInvalid(f"Property {prop.id} ({prop.name}) is a {prop.data_type} {prop.kind.value}; "
                                   f"its dataType and type cannot change (got {now.data_type} {now.kind.value}).")
        hierarchies = {h.id: h for h in new.hierarchies}
        for h in old.hierarchies:
            if h.id in hierarchies and hierarchies[h.id].child_model_id != h.child_model_id:
                raise ModelInvalid(f"Hierarchy {h.id} ({h.name}) holds assets of asset model {h.child_model_id}; "
                                   "its childAssetModelId cannot change.")
            link = next((a for a in self.catalog.associations if a.hierarchy_id == h.id), None)
            if h.id not in hierarchies and link is not None:
                raise ModelInUse(f"Hierarchy {h.id} ({h.name}) cannot be removed: asset {link.child_id} is "
                                 f"associated under it with asset {link.parent_id}; disassociate it first.",
                                 old.id, "asset-model")

    @staticmethod
    def _new_external_id(body: Mapping[str, Any], key: str, current: str | None, what: str) -> str | None:
        ext = body.get(key)
        if ext is None:
            return current
        if not is_external_id(ext):
            raise ModelInvalid(f"{key} {ext!r} is not a valid external id (2-128 characters: letters, digits, _ - . :)")
        if current is not None and ext != current:
            raise ModelInvalid(f"The external id of {what} is {current}; an external id cannot change.")
        return str(ext)

    def _with_asset(self, changed: Asset) -> Change:
        catalog = dataclasses.replace(self.catalog,
                                      assets=tuple(changed if a.id == changed.id else a for a in self.catalog.assets))
        return Change(self._with(catalog), changed.id, assets=frozenset({changed.id}))

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
            owner = self._other_owner(alias, "propertyAlias", ref)
            if owner is not None:
                raise ModelInvalid(f"The alias {alias} is already in use by property {owner.property_id} "
                                   f"({owner.property_name}) of asset {owner.asset_id} ({owner.asset_name}).")
        state = body.get("propertyNotificationState") or "DISABLED"
        if state not in ("ENABLED", "DISABLED"):
            raise ModelInvalid(f"Invalid propertyNotificationState {state!r}; expected ENABLED or DISABLED.")
        unit = body.get("propertyUnit")
        if unit is not None and (err := text_problem(unit, "propertyUnit")):
            raise ModelInvalid(err)
        model_prop = self.model(asset.model_id).property(ref.property_id)
        topic = (f"$aws/sitewise/asset-models/{asset.model_id}/assets/{asset.id}/properties/{ref.property_id}")
        prop = asset.property(ref.property_id)
        assert prop is not None  # the registry holds resolved assets
        return self._with_property(asset, ref.property_id, now, alias=alias, notification=Notification(topic, state),
                                   unit=unit if unit is not None else model_prop.unit if model_prop else prop.unit)

    def associate_time_series(self, alias: str, asset_ref: str, property_ref: str, now: float) -> Change:
        """``AssociateTimeSeriesToAssetProperty``: the alias becomes the property's, and so do its values.

        Refused (ModelInUse) when the alias belongs to another property or the property has another alias
        (disassociate that first); associating an alias with the property that has it changes nothing.
        """
        asset = self.asset(asset_ref)
        ref = self.property(asset.id, property_ref)
        owner = self._other_owner(alias, "alias", ref)
        if owner is not None:
            raise ModelInUse(f"The time series {alias} is associated with property {owner.property_id} "
                             f"({owner.property_name}) of asset {owner.asset_id} ({owner.asset_name}); "
                             "disassociate it first.", owner.asset_id, "asset")
        if ref.alias is not None and ref.alias != alias:
            raise ModelInUse(f"Property {ref.property_id} ({ref.property_name}) of asset {asset.id} is associated "
                             f"with the time series {ref.alias}; disassociate it first.", asset.id, "asset")
        return self._with_property(asset, ref.property_id, now, alias=alias)

    def disassociate_time_series(self, alias: str, asset_ref: str, property_ref: str, now: float) -> Change:
        """``DisassociateTimeSeriesFromAssetProperty``: the property loses its alias; the values stay with the
        alias, a disassociated time series from now on."""
        asset = self.asset(asset_ref)
        ref = self.property(asset.id, property_ref)
        if ref.alias != alias:
            raise ModelNotFound(f"The time series {alias} is not associated with property {ref.property_id} "
                                f"({ref.property_name}) of asset {asset.id}.", alias)
        return self._with_property(asset, ref.property_id, now, alias=None)

    def _other_owner(self, alias: Any, key: str, ref: PropertyRef) -> PropertyRef | None:
        """The property other than ``ref`` that has ``alias`` (None: free); ModelInvalid for a malformed alias."""
        err = alias_problem(alias)
        if err:
            raise ModelInvalid(f"Invalid {key}: {err}.")
        owner = self._by_alias.get(alias)
        return owner if owner is not None and (owner.asset_id, owner.property_id) != (ref.asset_id,
                                                                                       ref.property_id) else None

    def _with_property(self, asset: Asset, property_id: str, now: float, **changes: Any) -> Change:
        """A change of one property of an asset (``changes``: the AssetProperty members to set)."""
        props = tuple(dataclasses.replace(p, **changes) if p.id == property_id else p for p in asset.properties)
        return self._with_asset(dataclasses.replace(asset, properties=props, updated=now))

    def associate_assets(self, parent_ref: str, body: Mapping[str, Any]) -> Change:
        """``AssociateAssets``: a child of the hierarchy's model, one parent per asset, no cycle."""
        parent, hierarchy, child = self._link(parent_ref, body)
        link = Association(parent.id, hierarchy.id, child.id)
        if link in self.catalog.associations:
            raise ModelExists(f"Asset {child.id} is already associated with asset {parent.id} through hierarchy "
                              f"{hierarchy.id}.", child.id, "asset")
        if child.model_id != hierarchy.child_model_id:
            raise ModelInvalid(f"Asset {child.id} is of asset model {child.model_id}, but hierarchy {hierarchy.id} "
                               f"({hierarchy.name}) holds assets of asset model {hierarchy.child_model_id}.")
        if child.id in self._parent:
            raise ModelInvalid(f"Asset {child.id} is already associated with parent asset "
                               f"{self._parent[child.id][0]}; an asset has at most one parent.")
        node: Asset | None = parent
        while node is not None:
            if node.id == child.id:
                raise ModelInvalid(f"Associating asset {child.id} under asset {parent.id} would make a cycle.")
            node = self.parent(node.id)
        catalog = dataclasses.replace(self.catalog, associations=(*self.catalog.associations, link))
        return Change(self._with(catalog), child.id, associations=True)

    def disassociate_assets(self, parent_ref: str, body: Mapping[str, Any]) -> Change:
        """``DisassociateAssets``: removes a link that exists (ModelNotFound otherwise)."""
        parent, hierarchy, child = self._link(parent_ref, body)
        link = Association(parent.id, hierarchy.id, child.id)
        if link not in self.catalog.associations:
            raise ModelNotFound(f"Asset {child.id} is not associated with asset {parent.id} through hierarchy "
                                f"{hierarchy.id}.", child.id)
        catalog = dataclasses.replace(self.catalog,
                                      associations=tuple(a for a in self.catalog.associations if a != link))
        return Change(self._with(catalog), child.id, associations=True)

    def _link(self, parent_ref: str, body: Mapping[str, Any]) -> tuple[Asset, ModelHierarchy, Asset]:
        parent = self.asset(parent_ref)
        hierarchy_ref = _custom_id(_require_text(body, "hierarchyId"), "hierarchyId")
        child = self.asset(_custom_id(_require_text(body, "childAssetId"), "childAssetId"))
        return parent, self.hierarchy(parent, hierarchy_ref), child

    def delete_asset(self, ref: str) -> Change:
        """``DeleteAsset``: refused while the asset has a parent or children, or if a configuration file defines it."""
        asset = self.asset(ref)
        self._deletable(asset.id, "Asset")
        if asset.id in self._parent or self._children.get(asset.id):
            raise ModelInUse(f"Asset {asset.id} is associated with other assets; disassociate it first.", asset.id,
                             "asset")
        catalog = dataclasses.replace(self.catalog, assets=tuple(a for a in self.catalog.assets if a.id != asset.id))
        return Change(self._with(catalog), asset.id, assets=frozenset({asset.id}))

    def delete_asset_model(self, ref: str) -> Change:
        """``DeleteAssetModel``: refused while assets of it exist or another model's hierarchy holds it."""
        model = self.model(ref)
        self._deletable(model.id, "Asset model")
        used = next((a for a in self._assets.values() if a.model_id == model.id), None)
        parent = next((m for m in self._models.values() for h in m.hierarchies if h.child_model_id == model.id), None)
        if used is not None:
            raise ModelInUse(f"Asset model {model.id} is in use: asset {used.id} was created from it.", model.id,
                             "asset-model")
        if parent is not None:
            raise ModelInUse(f"Asset model {model.id} is in use: asset model {parent.id} has a hierarchy of it.",
                             model.id, "asset-model")
        catalog = dataclasses.replace(self.catalog, models=tuple(m for m in self.catalog.models if m.id != model.id))
        return Change(self._with(catalog), model.id, models=frozenset({model.id}))

    def _deletable(self, object_id: str, what: str, action: str = "remove") -> None:
        source = self.config_sources.get(object_id)
        if source is not None:
            raise ModelInvalid(f"{what} {object_id} is defined in the configuration file {source}, which the API "
                               f"does not change; {action} it there.")


def _require_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise ModelInvalid(f"{key} is required.")
    err = text_problem(value, key, max_len=256 if key.endswith("Name") else 139)
    if err:
        raise ModelInvalid(err)
    return str(value)


def _optional_id(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not is_id(value):
        raise ModelInvalid(f"{key} {value!r} is not a UUID (36 lower-case hex characters, not all zero).")
    return value


def _custom_id(ref: str, key: str) -> str:
    """A ``CustomID`` (UUID or ``externalId:...``), as the API takes references; names are refused."""
    if not (is_id(ref) or (ref.startswith(EXTERNAL_PREFIX) and len(ref) > len(EXTERNAL_PREFIX))):
        raise ModelInvalid(f"{key} {ref!r} is neither a UUID nor externalId:<external id>.")
    return ref


def _added(catalog: Catalog, operation: str, doc: Mapping[str, Any]) -> Catalog:
    """``catalog`` plus one request's object; its problems as one InvalidRequest message."""
    try:
        return add_documents(catalog, [(operation, doc)])
    except ModelInvalid as exc:
        raise ModelInvalid("; ".join(line.removeprefix(f"{operation}: ") for line in exc.problems)) from None


def _follow(asset: Asset, model: AssetModel, now: float) -> Asset:
    """``asset`` after its model changed: the model's properties in its order, each kept one with its alias,
    unit and notification; the model's hierarchies."""
    had = {p.id: p for p in asset.properties}
    props = tuple(dataclasses.replace(had[p.id], name=p.name, external_id=p.external_id,
                                      data_type_spec=p.data_type_spec) if p.id in had
                  else AssetProperty(p.id, p.name, p.data_type, p.kind, None, p.unit, p.external_id, None,
                                     p.data_type_spec)
                  for p in model.properties)
    hierarchies = tuple(AssetHierarchy(h.id, h.name, h.external_id) for h in model.hierarchies)
    return dataclasses.replace(asset, properties=props, hierarchies=hierarchies, updated=now)
