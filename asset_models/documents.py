"""SiteWise JSON documents -> a :class:`~asset_models.model.Catalog`, every problem reported at once.

A document is what ``aws iotsitewise describe-asset-model`` or ``describe-asset`` prints, a
``CreateAssetModel`` request, or a bundle ``{"assetModels": [...], "assets": [...],
"associations": [...]}``, so a plant modelled in AWS loads unchanged:

    catalog = build_catalog([("models/plant.json", json.loads(text))])   # (source name, parsed JSON)
    bigger = add_documents(catalog, [("CreateAsset", body)])             # copy-on-write: catalog unchanged

Everything is checked and every problem is reported at once, one line each, naming the
source and the model, asset or property: an operator fixes the files in one pass. Only the
shape of transforms and metrics is checked here (compiling them is
:func:`~asset_models.checks.expression_problems`). Reading the files is the runtime's job
(``sitewise_edge/runtime/models.py``): this module does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asset_models.checks import alias_problem, generated_id, parse_date
from asset_models.errors import ModelInvalid
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
)
from asset_models.model_reader import ModelReader


def build_catalog(documents: Sequence[tuple[str, Any]], problems: Sequence[str] = ()) -> Catalog:
    """Documents (source name, parsed JSON) -> a :class:`Catalog`; raises ModelInvalid listing every problem.

    ``problems`` found before (files that could not be read, say) are listed first and fail the build too.
    """
    return add_documents(Catalog(), documents, problems)


def add_documents(base: Catalog, documents: Sequence[tuple[str, Any]], problems: Sequence[str] = ()) -> Catalog:
    """A new :class:`Catalog`: ``base`` (valid, not checked again) plus the objects of ``documents``.

    The new objects are checked as at load and against ``base``: references may point into it,
    ids, external ids, model names and aliases must not clash with it, associations must keep
    one parent per asset and no cycle. ``base`` is left as it is (copy-on-write).
    Raises ModelInvalid listing every problem.
    """
    builder = _Builder(list(problems), base)
    for source, doc in documents:
        builder.add_document(source, doc)
    catalog = builder.finish()
    if builder.problems:
        raise ModelInvalid(builder.problems)
    return catalog


_SHAPES = ('expected a DescribeAssetModel or CreateAssetModel object (assetModelName), a DescribeAsset object '
           '(assetName, assetModelId) or a bundle {"assetModels": [...], "assets": [...], "associations": [...]}')
_BUNDLE_KEYS = ("assetModels", "assets", "associations")


class _Builder(ModelReader):
    """Collects documents, then resolves references across all of them and checks everything."""

    def __init__(self, problems: list[str], base: Catalog | None = None) -> None:
        super().__init__(problems)
        self._base = base or Catalog()
        self._models: list[AssetModel] = []
        self._raw_assets: list[tuple[str, str, Mapping[str, Any]]] = []
        self._raw_associations: list[tuple[str, Any]] = []

    # -- documents

    def add_document(self, source: str, doc: Any) -> None:
        if isinstance(doc, Mapping) and any(k in doc for k in _BUNDLE_KEYS):
            self._add_bundle(source, doc)
        elif isinstance(doc, Mapping) and "assetModelName" in doc:
            self._add_model(source, doc, source)
        elif isinstance(doc, Mapping) and ("assetName" in doc or "assetId" in doc):
            self._raw_assets.append((source, source, doc))
        else:
            got = f"an object with members {sorted(doc)[:6]}" if isinstance(doc, Mapping) else type(doc).__name__
            self._problem(f"{source}: unknown JSON shape ({got}); {_SHAPES}")

    def _add_bundle(self, source: str, doc: Mapping[str, Any]) -> None:
        unknown = sorted(set(doc) - set(_BUNDLE_KEYS))
        if unknown:
            self._problem(f"{source}: unknown bundle member(s) {unknown}; expected {list(_BUNDLE_KEYS)}")
        for key in _BUNDLE_KEYS:
            items = doc.get(key, [])
            if not isinstance(items, list):
                self._problem(f"{source}: {key} must be a list")
                continue
            for i, item in enumerate(items):
                label = f"{source}: {key}[{i}]"
                if key == "associations":
                    self._raw_associations.append((label, item))
                elif not isinstance(item, Mapping):
                    self._problem(f"{label}: must be an object")
                elif key == "assetModels":
                    self._add_model(source, item, label)
                else:
                    self._raw_assets.append((source, label, item))

    def _add_model(self, source: str, doc: Mapping[str, Any], label: str) -> None:
        model = self.read_model(source, doc, label)
        if model is not None:
            self._models.append(model)

    # -- cross-references

    def finish(self) -> Catalog:
        base = self._base
        known = {m.id: m for m in base.models}
        models = self._index(self._models, "model", base.models)
        candidates = {**known, **models}
        resolved: dict[str, AssetModel] = {}
        for model in models.values():
            hierarchies = []
            for h in model.hierarchies:
                child = _lookup(candidates, h.child_model_id)
                if child is None:
                    self._problem(f"{model.source}: model '{model.name}' hierarchy '{h.name}': "
                                  f"no such asset model {h.child_model_id!r}")
                else:
                    hierarchies.append(ModelHierarchy(h.id, h.name, child.id, h.external_id))
            resolved[model.id] = dataclasses.replace(model, hierarchies=tuple(hierarchies))
        everything = {**known, **resolved}
        for model in resolved.values():
            self._check_variables(model, everything)
        assets = self._index([a for s, lbl, d in self._raw_assets if (a := self._asset(s, lbl, d, everything))],
                             "asset", base.assets)
        self._check_aliases(assets.values(), base.assets)
        associations = self._associations({**{a.id: a for a in base.assets}, **assets}, everything,
                                          base.associations)
        return Catalog(base.models + tuple(resolved.values()), base.assets + tuple(assets.values()),
                       base.associations + tuple(associations))

    def _index(self, items: Sequence[Any], what: str, known: Sequence[Any] = ()) -> dict[str, Any]:
        """New items by id, dropping (and reporting) duplicate ids, external ids and, for models, names
        (among themselves and against the ``known`` items of the base catalog)."""
        by_id: dict[str, Any] = {i.id: i for i in known}
        by_ext: dict[str, Any] = {i.external_id: i for i in known if i.external_id}
        by_name: dict[str, Any] = {i.name: i for i in known}
        out: dict[str, Any] = {}
        for item in items:
            clashes = [("id", item.id, by_id.get(item.id)),
                       ("externalId", item.external_id, by_ext.get(item.external_id or "")),
                       ("name", item.name, by_name.get(item.name) if what == "model" else None)]
            member, value, first = next((c for c in clashes if c[2] is not None), ("", "", None))
            if first is not None:
                self._problem(f"{item.source}: {what} '{item.name}': {member} {value!r} is already used by "
                              f"{what} '{first.name}' ({first.source})")
                continue
            by_id[item.id] = item
            by_name[item.name] = item
            if item.external_id:
                by_ext[item.external_id] = item
            out[item.id] = item
        return out

    def _check_variables(self, model: AssetModel, models: Mapping[str, AssetModel]) -> None:
        for prop in model.properties:
            for var in prop.variables:
                where = f"{model.source}: model '{model.name}' property '{prop.name}' variable '{var.name}'"
                target = model
                if var.hierarchy_id is not None:
                    hierarchy = model.hierarchy(var.hierarchy_id)
                    if hierarchy is None:
                        self._problem(f"{where}: no hierarchy {var.hierarchy_id!r} in model '{model.name}'")
                        continue
                    target = models.get(hierarchy.child_model_id, target)
                if var.property_id is not None and target.property(var.property_id) is None:
                    self._problem(f"{where}: no property {var.property_id!r} in model '{target.name}'")

    def _asset(self, source: str, label: str, doc: Mapping[str, Any],
               models: Mapping[str, AssetModel]) -> Asset | None:
        name = self._text(doc, "assetName", label, required=True)
        where = f"{source}: asset '{name}'" if name else label
        model_ref = self._text(doc, "assetModelId", where, required=True)
        if name is None or model_ref is None:
            return None
        model = _lookup(models, model_ref)
        if model is None:
            self._problem(f"{where}: no such asset model {model_ref!r}")
            return None
        given: dict[str, AssetProperty] = {}
        for i, raw in enumerate(self._list(doc, "assetProperties", where)):
            prop = self._asset_property(raw, model, where, i)
            if prop is not None and prop.id in given:
                self._problem(f"{where} property '{prop.name}': listed twice")
            elif prop is not None:
                given[prop.id] = prop
        asset_id = self._id(doc, "assetId", where) or generated_id("asset", model.id, name)
        for i, raw in enumerate(self._list(doc, "assetHierarchies", where)):
            self._asset_hierarchy(raw, i, model, asset_id, where)
        properties = tuple(given.get(p.id) or AssetProperty(p.id, p.name, p.data_type, p.kind, None, p.unit,
                                                            p.external_id, None, p.data_type_spec)
                           for p in model.properties)
        asset = Asset(
            id=asset_id, name=name, model_id=model.id, properties=properties,
            hierarchies=tuple(AssetHierarchy(h.id, h.name, h.external_id) for h in model.hierarchies),
            description=self._text(doc, "assetDescription", where, max_len=2048),
            external_id=self._external_id(doc, "assetExternalId", where), source=source,
            created=parse_date(doc.get("assetCreationDate")), updated=parse_date(doc.get("assetLastUpdateDate")),
        )
        return asset

    def _asset_hierarchy(self, raw: Any, index: int, model: AssetModel, asset_id: str, asset_where: str) -> None:
        """One ``assetHierarchies`` entry. With a ``childAssetId`` (or ``childAssetExternalId``), as CloudFormation
        and SiteWise's bulk export write them, it is an association, resolved and checked with the others."""
        if not isinstance(raw, Mapping):
            self._problem(f"{asset_where} hierarchy #{index + 1}: must be an object")
            return
        refs = [(k, raw[k]) for k in ("id", "externalId", "logicalId", "name") if isinstance(raw.get(k), str)]
        hierarchy = next((h for k, r in refs
                          if (h := model.hierarchy(EXTERNAL_PREFIX + r if k == "externalId" else r)) is not None), None)
        if hierarchy is None:
            ref = refs[0][1] if refs else f"#{index + 1}"
            self._problem(f"{asset_where} hierarchy '{ref}': no such hierarchy in model '{model.name}'")
            return
        child = raw.get("childAssetId")
        if child is None and raw.get("childAssetExternalId") is not None:
            child = f"{EXTERNAL_PREFIX}{raw['childAssetExternalId']}"
        if child is not None:
            self._raw_associations.append((f"{asset_where} hierarchy '{hierarchy.name}'", {
                "parentAssetId": asset_id, "hierarchyId": hierarchy.id, "childAssetId": child}))

    def _asset_property(self, raw: Any, model: AssetModel, asset_where: str, index: int) -> AssetProperty | None:
        if not isinstance(raw, Mapping):
            self._problem(f"{asset_where} property #{index + 1}: must be an object")
            return None
        pid, pname = raw.get("id"), raw.get("name")
        where = f"{asset_where} property '{pname or pid or f'#{index + 1}'}'"
        if pid is None and pname is None:
            self._problem(f"{where}: needs an id or a name")
            return None
        key, ref = ("id", pid) if pid is not None else ("name", pname)
        mp = next((p for p in model.properties if getattr(p, key) == ref), None)
        if mp is None:
            self._problem(f"{where}: no such property in model '{model.name}'")
            return None
        if pname is not None and pname != mp.name:
            self._problem(f"{where}: property {pid} is named {mp.name!r} in model '{model.name}'")
        if raw.get("dataType") is not None and raw["dataType"] != mp.data_type:
            self._problem(f"{where}: dataType {raw['dataType']!r} differs from {mp.data_type} in model '{model.name}'")
        alias = raw.get("alias")
        if alias is not None and (err := alias_problem(alias)):
            self._problem(f"{where}: {err}")
        notification = raw.get("notification")
        if notification is not None:
            if (not isinstance(notification, Mapping) or not isinstance(notification.get("topic"), str)
                    or notification.get("state") not in ("ENABLED", "DISABLED")):
                self._problem(f"{where}: notification must be {{\"topic\": \"...\", \"state\": ENABLED|DISABLED}}")
                notification = None
            else:
                notification = Notification(notification["topic"], notification["state"])
        unit = self._text(raw, "unit", where) if raw.get("unit") is not None else mp.unit
        return AssetProperty(mp.id, mp.name, mp.data_type, mp.kind, alias, unit, mp.external_id, notification,
                             mp.data_type_spec)

    def _check_aliases(self, assets: Iterable[Asset], known: Iterable[Asset] = ()) -> None:
        owners: dict[str, tuple[Asset, AssetProperty]] = {
            p.alias: (a, p) for a in known for p in a.properties if p.alias is not None}
        for asset in assets:
            for prop in asset.properties:
                if prop.alias is None:
                    continue
                if prop.alias in owners:
                    first, first_prop = owners[prop.alias]
                    self._problem(f"{asset.source}: asset '{asset.name}' property '{prop.name}': alias {prop.alias!r} "
                                  f"is already used by asset '{first.name}' property '{first_prop.name}'")
                else:
                    owners[prop.alias] = (asset, prop)

    def _associations(self, assets: Mapping[str, Asset], models: Mapping[str, AssetModel],
                      known: Iterable[Association] = ()) -> list[Association]:
        parent_of: dict[str, str] = {a.child_id: a.parent_id for a in known}
        out: list[Association] = []
        for where, raw in self._raw_associations:
            if not isinstance(raw, Mapping):
                self._problem(f"{where}: must be an object {{parentAssetId, hierarchyId, childAssetId}}")
                continue
            refs = [self._text(raw, k, where, required=True) for k in ("parentAssetId", "hierarchyId", "childAssetId")]
            parent_ref, hierarchy_ref, child_ref = refs
            if parent_ref is None or hierarchy_ref is None or child_ref is None:
                continue
            parent, child = self._asset_ref(assets, parent_ref, where), self._asset_ref(assets, child_ref, where)
            if parent is None or child is None:
                continue
            model = models[parent.model_id]
            hierarchy = model.hierarchy(hierarchy_ref)
            if hierarchy is None:
                self._problem(f"{where}: no hierarchy {hierarchy_ref!r} in model '{model.name}' "
                              f"of asset '{parent.name}'")
            elif child.model_id != hierarchy.child_model_id:
                self._problem(f"{where}: asset '{child.name}' is a '{models[child.model_id].name}' but hierarchy "
                              f"'{hierarchy.name}' of asset '{parent.name}' holds "
                              f"'{models[hierarchy.child_model_id].name}' assets")
            elif Association(parent.id, hierarchy.id, child.id) in (*out, *known):
                continue  # written twice (associations.json and the asset's hierarchies): one link
            elif child.id in parent_of:
                self._problem(f"{where}: asset '{child.name}' already has a parent "
                              f"('{assets[parent_of[child.id]].name}'); an asset has at most one")
            elif _is_ancestor(child.id, parent.id, parent_of):
                self._problem(f"{where}: associating '{child.name}' under '{parent.name}' would make a cycle")
            else:
                parent_of[child.id] = parent.id
                out.append(Association(parent.id, hierarchy.id, child.id))
        return out

    def _asset_ref(self, assets: Mapping[str, Asset], ref: str, where: str) -> Asset | None:
        asset = _lookup(assets, ref, by_name=False)
        if asset is None and not ref.startswith(EXTERNAL_PREFIX):
            named = [a for a in assets.values() if a.name == ref]
            if len(named) > 1:
                self._problem(f"{where}: asset name {ref!r} is ambiguous; use the asset id")
                return None
            asset = named[0] if named else None
        if asset is None:
            self._problem(f"{where}: no such asset {ref!r}")
        return asset


def _lookup(items: Mapping[str, Any], ref: str, *, by_name: bool = True) -> Any:
    """An item by UUID, ``externalId:...`` or (if unique, for hand-written files) name."""
    if ref.startswith(EXTERNAL_PREFIX):
        ext = ref[len(EXTERNAL_PREFIX):]
        return next((i for i in items.values() if i.external_id == ext), None)
    if ref in items:
        return items[ref]
    return next((i for i in items.values() if i.name == ref), None) if by_name else None


def _is_ancestor(candidate: str, asset_id: str, parent_of: Mapping[str, str]) -> bool:
    node: str | None = asset_id
    while node is not None:
        if node == candidate:
            return True
        node = parent_of.get(node)
    return False

