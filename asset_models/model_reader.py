"""Reading one SiteWise document's members, with a precise problem for each bad one.

:class:`ModelReader` is the half of the loader that looks at one document at a time: the
member helpers (text, ids, external ids, lists, enums) and a whole ``AssetModel`` document
(properties, their types, variables, windows, hierarchies). Problems are appended to the
shared list, one line each, naming the source and the object; a bad member is dropped (or
kept, where dropping it would add follow-up lines), never fatal. Resolving references across
documents is :mod:`asset_models.documents`, which builds on this class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from asset_models.checks import (
    VARIABLE_RE,
    default_problem,
    generated_id,
    is_external_id,
    is_id,
    parse_date,
    text_problem,
)
from asset_models.model import (
    DATA_TYPES,
    MAX_EXPRESSION,
    MAX_PROPERTIES,
    MODEL_TYPES,
    AssetModel,
    CompositeModel,
    ModelHierarchy,
    ModelProperty,
    PropertyKind,
    Variable,
    Window,
)

log = logging.getLogger(__name__)


class ModelReader:
    """Member helpers and the asset model document; ``problems`` collects one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def _problem(self, line: str) -> None:
        self.problems.append(line)

    # -- member helpers

    def _text(self, doc: Mapping[str, Any], key: str, where: str, *, required: bool = False,
              max_len: int = 256) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self._problem(f"{where}: missing required member '{key}'")
            return None
        err = text_problem(value, key, max_len=max_len)
        if err:
            self._problem(f"{where}: {err}")
            return None
        return str(value)

    def _id(self, doc: Mapping[str, Any], key: str, where: str) -> str | None:
        value = doc.get(key)
        if value is not None and not is_id(value):
            self._problem(f"{where}: {key} {value!r} is not a UUID (36 lower-case hex characters, not all zero)")
            return None
        return value

    def _external_id(self, doc: Mapping[str, Any], key: str, where: str) -> str | None:
        value = doc.get(key)
        if value is not None and not is_external_id(value):
            self._problem(f"{where}: {key} {value!r} is not a valid external id "
                          "(2-128 characters: letters, digits, _ - . :)")
            return None
        return value

    def _list(self, doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            self._problem(f"{where}: {key} must be a list")
            return []
        return value

    def _enum(self, value: Any, allowed: Sequence[str], what: str, where: str) -> str | None:
        if value is None:
            return None
        if value not in allowed:
            self._problem(f"{where}: unknown {what} {value!r}; expected {'|'.join(allowed)}")
            return None
        return str(value)

    # -- models

    def read_model(self, source: str, doc: Mapping[str, Any], label: str) -> AssetModel | None:
        """One asset model document (``label`` says where it is in ``source``); None if it has no usable name.

        References (a hierarchy's child model, variables) are kept as written: the caller resolves them.
        """
        name = self._text(doc, "assetModelName", label, required=True)
        if name is None:
            return None
        where = f"{source}: model '{name}'"
        model_id = self._id(doc, "assetModelId", where) or generated_id("asset-model", name)
        raw_props = self._list(doc, "assetModelProperties", where)
        if len(raw_props) > MAX_PROPERTIES:
            self._problem(f"{where}: {len(raw_props)} properties; an asset model has at most {MAX_PROPERTIES}")
        props = [p for i, raw in enumerate(raw_props) if (p := self._model_property(raw, model_id, where, i))]
        hierarchies = [h for i, raw in enumerate(self._list(doc, "assetModelHierarchies", where))
                       if (h := self._model_hierarchy(raw, model_id, where, i))]
        composites = [c for i, raw in enumerate(self._list(doc, "assetModelCompositeModels", where))
                      if (c := self._composite_model(raw, model_id, where, i))]
        self._unique(props, where, "property")
        self._unique(hierarchies, where, "hierarchy")
        self._unique(composites, where, "composite model")
        self._unique([*props, *hierarchies, *composites, *(p for c in composites for p in c.properties)], where,
                     "property, hierarchy or composite model", keys=("id",))
        return AssetModel(
            id=model_id, name=name, properties=tuple(props), hierarchies=tuple(hierarchies),
            description=self._text(doc, "assetModelDescription", where, max_len=2048),
            external_id=self._external_id(doc, "assetModelExternalId", where),
            model_type=self._enum(doc.get("assetModelType"), MODEL_TYPES, "assetModelType", where) or "ASSET_MODEL",
            source=source,
            created=parse_date(doc.get("assetModelCreationDate")),
            updated=parse_date(doc.get("assetModelLastUpdateDate")),
            composite_models=tuple(composites),
        )

    def _composite_model(self, raw: Any, model_id: str, model_where: str, index: int) -> CompositeModel | None:
        entry = self._entry(raw, "composite model", model_id, model_where, index)
        if entry is None:
            return None
        raw, name, where, cid = entry
        kind = self._text(raw, "type", where, required=True)
        props = [p for i, r in enumerate(self._list(raw, "properties", where))
                 if (p := self._model_property(r, cid, where, i))]
        self._unique(props, where, "property")
        if kind is None:
            return None
        return CompositeModel(cid, name, kind, tuple(props), self._text(raw, "description", where, max_len=2048),
                              self._external_id(raw, "externalId", where))

    def _unique(self, items: Sequence[Any], where: str, what: str,
                keys: Sequence[str] = ("id", "name", "external_id")) -> None:
        for key in keys:
            seen: dict[str, Any] = {}
            for item in items:
                value = getattr(item, key)
                if value is None:
                    continue
                if value in seen and key == "name":
                    self._problem(f"{where} {what} '{item.name}': defined twice")
                elif value in seen:
                    member = {"id": "id", "external_id": "externalId"}[key]
                    self._problem(f"{where} {what} '{item.name}': {member} {value!r} is already used by "
                                  f"'{seen[value].name}'")
                else:
                    seen[value] = item

    def _entry(self, raw: Any, what: str, owner_id: str, model_where: str,
               index: int) -> tuple[Mapping[str, Any], str, str, str] | None:
        """A property, hierarchy or composite model entry: (the entry, its name, where it is, its id, given or
        generated from ``owner_id``), or None (the problem reported)."""
        if not isinstance(raw, Mapping):
            self._problem(f"{model_where} {what} #{index + 1}: must be an object")
            return None
        name = self._text(raw, "name", f"{model_where} {what} #{index + 1}", required=True)
        if name is None:
            return None
        where = f"{model_where} {what} '{name}'"
        return raw, name, where, self._id(raw, "id", where) or generated_id(owner_id, what.replace(" ", "-"), name)

    def _model_property(self, raw: Any, model_id: str, model_where: str, index: int) -> ModelProperty | None:
        entry = self._entry(raw, "property", model_id, model_where, index)
        if entry is None:
            return None
        raw, name, where, pid = entry
        data_type = raw.get("dataType")
        if data_type is None:
            self._problem(f"{where}: missing required member 'dataType'")
        else:
            data_type = self._enum(data_type, DATA_TYPES, "dataType", where)
        fields: dict[str, Any] = {
            "unit": self._text(raw, "unit", where),
            "external_id": self._external_id(raw, "externalId", where),
            "data_type_spec": self._text(raw, "dataTypeSpec", where),
        }
        ptype = raw.get("type")
        if ptype is None:
            self._problem(f"{where}: missing required member 'type'")
            return None
        kinds = list(ptype) if isinstance(ptype, Mapping) else []
        if len(kinds) != 1 or kinds[0] not in PropertyKind.__members__.values():
            self._problem(f"{where}: type must have exactly one of attribute, measurement, transform, metric; "
                          f"got {kinds if isinstance(ptype, Mapping) else ptype!r}")
            return None
        kind = PropertyKind(kinds[0])
        body = ptype[kind.value] if ptype[kind.value] is not None else {}
        if not isinstance(body, Mapping):
            self._problem(f"{where}: type.{kind.value} must be an object")
            return None
        fields.update(self._property_type(kind, body, data_type, where))
        # Kept even with problems (the load fails anyway): dropping it would add "no such property" lines.
        return ModelProperty(id=pid, name=name, data_type=data_type or str(raw.get("dataType")), kind=kind, **fields)

    def _property_type(self, kind: PropertyKind, body: Mapping[str, Any], data_type: str | None,
                       where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        config = body.get("processingConfig") or {}
        if not isinstance(config, Mapping):
            self._problem(f"{where}: processingConfig must be an object")
            config = {}
        forwarding = config.get("forwardingConfig") or {}
        out["forwarding"] = self._enum(forwarding.get("state") if isinstance(forwarding, Mapping) else forwarding,
                                       ("ENABLED", "DISABLED"), "forwardingConfig.state", where)
        if kind is PropertyKind.ATTRIBUTE:
            default = body.get("defaultValue")
            if default is not None:
                err = text_problem(default, "defaultValue", max_len=1024) or default_problem(default, data_type)
                if err:
                    self._problem(f"{where}: {err}")
                out["default_value"] = default
            return out
        if kind is PropertyKind.MEASUREMENT:
            return out
        out["compute_location"] = self._enum(config.get("computeLocation"), ("EDGE", "CLOUD"),
                                             "computeLocation", where)
        expression = body.get("expression")
        if expression is None and kind is PropertyKind.TRANSFORM:
            self._problem(f"{where}: missing required member 'expression'")
        elif expression is not None and (not isinstance(expression, str) or len(expression) > MAX_EXPRESSION):
            self._problem(f"{where}: expression must be a string of at most {MAX_EXPRESSION} characters")
        out["expression"] = expression
        if "variables" not in body and kind is PropertyKind.TRANSFORM:
            self._problem(f"{where}: missing required member 'variables'")
        out["variables"] = self._variables(self._list(body, "variables", where), where)
        if kind is PropertyKind.METRIC:
            window = body.get("window")
            tumbling = window.get("tumbling") if isinstance(window, Mapping) else None
            if window is None:
                self._problem(f"{where}: missing required member 'window'")
            elif not isinstance(tumbling, Mapping) or not isinstance(tumbling.get("interval"), str):
                self._problem(f"{where}: window must be {{\"tumbling\": {{\"interval\": \"...\"}}}}")
            else:
                offset = tumbling.get("offset")
                out["window"] = Window(tumbling["interval"], offset if isinstance(offset, str) else None)
        return out

    def _variables(self, raws: list[Any], where: str) -> tuple[Variable, ...]:
        out: list[Variable] = []
        for i, raw in enumerate(raws):
            name = raw.get("name") if isinstance(raw, Mapping) else None
            vwhere = f"{where} variable '{name}'" if isinstance(name, str) else f"{where} variable #{i + 1}"
            value = raw.get("value") if isinstance(raw, Mapping) else None
            if not isinstance(name, str) or len(name) > 64 or not VARIABLE_RE.match(name):
                self._problem(f"{vwhere}: name must match ^[a-z][a-z0-9_]*$ (1-64 characters)")
                continue
            if any(v.name == name for v in out):
                self._problem(f"{vwhere}: defined twice")
                continue
            if not isinstance(value, Mapping) or not (value.get("propertyId") or value.get("propertyPath")):
                self._problem(f"{vwhere}: value must be an object with propertyId (and optionally hierarchyId)")
                continue
            path = value.get("propertyPath") or []
            segments = tuple((s.get("id"), s.get("name")) for s in path if isinstance(s, Mapping))
            if not isinstance(path, list) or len(segments) != len(path):
                self._problem(f"{vwhere}: propertyPath must be a list of {{id, name}} objects")
                continue
            out.append(Variable(name, value.get("propertyId"), value.get("hierarchyId"), segments))
        return tuple(out)

    def _model_hierarchy(self, raw: Any, model_id: str, model_where: str, index: int) -> ModelHierarchy | None:
        entry = self._entry(raw, "hierarchy", model_id, model_where, index)
        if entry is None:
            return None
        raw, name, where, hid = entry
        child = self._text(raw, "childAssetModelId", where, required=True)
        if child is None:
            return None
        return ModelHierarchy(hid, name, child, self._external_id(raw, "externalId", where))

