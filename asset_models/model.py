"""Asset models and assets in SiteWise's own JSON shapes, loaded into typed immutable values.

A file holds what ``aws iotsitewise describe-asset-model`` or ``describe-asset`` prints, a
``CreateAssetModel`` request, or a bundle ``{"assetModels": [...], "assets": [...],
"associations": [...]}``, so a plant modelled in AWS loads unchanged. Everything is checked
at load and every problem is reported at once, one line each, naming the file and the
model, asset or property: an operator fixes the files in one pass.

Transforms and metrics are kept as data (expression, variables, window); only their shape
is checked here. Compiling and computing them is the job of the expression engine.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sitewise_edge.errors import ModelError

logger = logging.getLogger(__name__)

DATA_TYPES: tuple[str, ...] = ("STRING", "INTEGER", "DOUBLE", "BOOLEAN", "STRUCT")
MODEL_TYPES: tuple[str, ...] = ("ASSET_MODEL", "COMPONENT_MODEL", "INTERFACE")
MAX_PROPERTIES = 200
MAX_ALIAS = 2048
MAX_EXPRESSION = 1024

# Seeds uuid5 for ids a file leaves out, so that a restart gives the same ids.
ID_NAMESPACE = uuid.UUID("6f1c1d2e-3b7a-4c59-9a43-0d6a2f5e8b11")

ID_RE = re.compile(r"^(?!00000000-0000-0000-0000-000000000000)"
                   r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EXTERNAL_ID_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z_\-0-9.:]*[a-zA-Z0-9_]+$")
VARIABLE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
EXTERNAL_PREFIX = "externalId:"


class PropertyKind(enum.StrEnum):
    """The member of SiteWise's ``PropertyType`` a property has."""

    MEASUREMENT = "measurement"
    ATTRIBUTE = "attribute"
    TRANSFORM = "transform"
    METRIC = "metric"


@dataclass(frozen=True, slots=True)
class Variable:
    """An expression variable; ``property_id``/``hierarchy_id`` are kept as written (id, name or externalId:)."""

    name: str
    property_id: str | None = None
    hierarchy_id: str | None = None
    property_path: tuple[tuple[str | None, str | None], ...] = ()  # (id, name) segments

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if self.property_id is not None:
            value["propertyId"] = self.property_id
        if self.hierarchy_id is not None:
            value["hierarchyId"] = self.hierarchy_id
        if self.property_path:
            value["propertyPath"] = [_drop_none({"id": i, "name": n}) for i, n in self.property_path]
        return {"name": self.name, "value": value}


@dataclass(frozen=True, slots=True)
class Window:
    """A metric's tumbling window, as written (``5m``, ``1h``...): parsed by the metrics engine."""

    interval: str
    offset: str | None = None


@dataclass(frozen=True, slots=True)
class ModelProperty:
    """One ``AssetModelProperty``. Its id is shared by every asset of the model."""

    id: str
    name: str
    data_type: str
    kind: PropertyKind
    unit: str | None = None
    external_id: str | None = None
    data_type_spec: str | None = None
    default_value: str | None = None  # attributes
    expression: str | None = None  # transforms and metrics
    variables: tuple[Variable, ...] = ()
    window: Window | None = None  # metrics
    forwarding: str | None = None  # processingConfig.forwardingConfig.state
    compute_location: str | None = None  # processingConfig.computeLocation

    def type_json(self) -> dict[str, Any]:
        """The ``PropertyType`` member, rebuilt in SiteWise's shape."""
        body: dict[str, Any] = {}
        if self.kind is PropertyKind.ATTRIBUTE:
            if self.default_value is not None:
                body["defaultValue"] = self.default_value
        elif self.kind is PropertyKind.MEASUREMENT:
            if self.forwarding is not None:
                body["processingConfig"] = {"forwardingConfig": {"state": self.forwarding}}
        else:
            if self.expression is not None:
                body["expression"] = self.expression
            if self.variables or self.kind is PropertyKind.TRANSFORM:
                body["variables"] = [v.to_json() for v in self.variables]
            if self.window is not None:
                body["window"] = {"tumbling": _drop_none({"interval": self.window.interval,
                                                          "offset": self.window.offset})}
            if self.compute_location is not None:
                config: dict[str, Any] = {"computeLocation": self.compute_location}
                if self.forwarding is not None and self.kind is PropertyKind.TRANSFORM:
                    config["forwardingConfig"] = {"state": self.forwarding}
                body["processingConfig"] = config
        return {self.kind.value: body}

    def to_json(self) -> dict[str, Any]:
        """This property as an ``AssetModelProperty``."""
        return _drop_none({"id": self.id, "externalId": self.external_id, "name": self.name,
                           "dataType": self.data_type, "dataTypeSpec": self.data_type_spec,
                           "unit": self.unit, "type": self.type_json()})


@dataclass(frozen=True, slots=True)
class ModelHierarchy:
    """An ``AssetModelHierarchy``; ``child_model_id`` is resolved to the child model's UUID."""

    id: str
    name: str
    child_model_id: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class AssetModel:
    id: str
    name: str
    properties: tuple[ModelProperty, ...] = ()
    hierarchies: tuple[ModelHierarchy, ...] = ()
    description: str | None = None
    external_id: str | None = None
    model_type: str = "ASSET_MODEL"
    source: str = ""
    created: float | None = None  # epoch seconds; None: the registry's load time
    updated: float | None = None

    def property(self, ref: str) -> ModelProperty | None:
        """A property by id, ``externalId:...`` or name (the forms expressions may use)."""
        return _find(self.properties, ref)

    def hierarchy(self, ref: str) -> ModelHierarchy | None:
        return _find(self.hierarchies, ref)


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str
    state: str


@dataclass(frozen=True, slots=True)
class AssetProperty:
    """A model property as it is on one asset: same id, plus the asset's alias, unit and notification."""

    id: str
    name: str
    data_type: str
    kind: PropertyKind
    alias: str | None = None
    unit: str | None = None
    external_id: str | None = None
    notification: Notification | None = None
    data_type_spec: str | None = None


@dataclass(frozen=True, slots=True)
class AssetHierarchy:
    id: str
    name: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    name: str
    model_id: str
    properties: tuple[AssetProperty, ...] = ()
    hierarchies: tuple[AssetHierarchy, ...] = ()
    description: str | None = None
    external_id: str | None = None
    source: str = ""
    created: float | None = None  # epoch seconds; None: the registry's load time
    updated: float | None = None

    def property(self, property_id: str) -> AssetProperty | None:
        return next((p for p in self.properties if p.id == property_id), None)


@dataclass(frozen=True, slots=True)
class Association:
    """A child asset under a hierarchy of its parent (DescribeAsset has no children list)."""

    parent_id: str
    hierarchy_id: str
    child_id: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything loaded: models, assets and associations, all references resolved to UUIDs."""

    models: tuple[AssetModel, ...] = ()
    assets: tuple[Asset, ...] = ()
    associations: tuple[Association, ...] = ()


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _find(items: Iterable[Any], ref: str) -> Any:
    if ref.startswith(EXTERNAL_PREFIX):
        ext = ref[len(EXTERNAL_PREFIX):]
        return next((i for i in items if i.external_id == ext), None)
    items = tuple(items)
    return next((i for i in items if i.id == ref), None) or next((i for i in items if i.name == ref), None)


def generated_id(*parts: str) -> str:
    """A stable UUID for an object a file gives no id: the same names give the same id on every start."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(parts)))


def alias_problem(alias: Any) -> str | None:
    """Why ``alias`` is not a valid property alias (1–2048 characters, no control characters), or None."""
    if not isinstance(alias, str) or not alias:
        return f"alias must be a non-empty string, got {alias!r}"
    if len(alias) > MAX_ALIAS:
        return f"alias is {len(alias)} characters long; at most {MAX_ALIAS} are allowed"
    if _CONTROL_RE.search(alias):
        return f"alias {alias!r} contains a control character"
    return None


# --- loading ------------------------------------------------------------------------------


def load_catalog(paths: Sequence[Path]) -> Catalog:
    """Read files and folders (every ``*.json`` inside, sorted) and build a :class:`Catalog`.

    Raises :class:`ModelError` listing every problem, one line each.
    """
    documents: list[tuple[str, Any]] = []
    problems: list[str] = []
    for path in expand_paths(paths, problems):
        try:
            documents.append((str(path), json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
    catalog = build_catalog(documents, problems)
    logger.info("loaded %d asset models and %d assets from %d files",
                len(catalog.models), len(catalog.assets), len(documents))
    return catalog


def expand_paths(paths: Sequence[Path], problems: list[str]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return out


def build_catalog(documents: Sequence[tuple[str, Any]], problems: Sequence[str] = ()) -> Catalog:
    """Documents (source name, parsed JSON) -> a :class:`Catalog`; raises ModelError listing every problem."""
    return add_documents(Catalog(), documents, problems)


def add_documents(base: Catalog, documents: Sequence[tuple[str, Any]], problems: Sequence[str] = ()) -> Catalog:
    """A new :class:`Catalog`: ``base`` (valid, not checked again) plus the objects of ``documents``.

    The new objects are checked as at load and against ``base``: references may point into it,
    ids, external ids, model names and aliases must not clash with it, associations must keep
    one parent per asset and no cycle. ``base`` is left as it is (copy-on-write).
    Raises ModelError listing every problem.
    """
    builder = _Builder(list(problems), base)
    for source, doc in documents:
        builder.add_document(source, doc)
    catalog = builder.finish()
    if builder.problems:
        raise ModelError("\n".join(builder.problems))
    return catalog


def expression_problems(model: AssetModel, models: Mapping[str, AssetModel], where: str) -> list[str]:
    """Compile every transform and metric of ``model`` with the expression engine; one line per failure.

    ``models`` (by id) holds the child models that hierarchy variables reach.
    """
    from asset_models.expressions import ExpressionError, VarInfo, compile_expression

    out: list[str] = []
    for prop in model.properties:
        if prop.kind not in (PropertyKind.TRANSFORM, PropertyKind.METRIC) or not prop.expression:
            continue
        variables: dict[str, VarInfo] = {}
        for var in prop.variables:
            target: AssetModel | None = model
            if var.hierarchy_id is not None:
                hierarchy = model.hierarchy(var.hierarchy_id)
                target = models.get(hierarchy.child_model_id) if hierarchy else None
            found = target.property(var.property_id) if target and var.property_id else None
            if found is None:
                continue  # reported by the reference checks
            data_type = found.data_type if found.data_type in ("DOUBLE", "INTEGER", "BOOLEAN", "STRING") \
                else "STRING"
            variables[var.name] = VarInfo(data_type, attribute=found.kind is PropertyKind.ATTRIBUTE,  # type: ignore[arg-type]
                                          hierarchy=var.hierarchy_id is not None,
                                          metric=found.kind is PropertyKind.METRIC)
        output = prop.data_type if prop.data_type in ("DOUBLE", "STRING") else None
        try:
            compile_expression(prop.expression, variables, prop.kind.value,  # type: ignore[arg-type]
                               output_type=output)  # type: ignore[arg-type]
        except ExpressionError as exc:
            out.append(f"{where} property '{prop.name}': expression: {exc}")
    return out


def parse_date(value: Any) -> float | None:
    """A SiteWise timestamp as files hold it (epoch seconds, or ISO-8601 as the AWS CLI prints) -> epoch seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def check_text(value: Any, what: str, *, max_len: int = 256) -> str | None:
    """Why ``value`` is not a valid SiteWise ``Name``-like string, or None."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string, got {value!r}"
    if len(value) > max_len:
        return f"{what} is longer than {max_len} characters"
    if _CONTROL_RE.search(value):
        return f"{what} {value!r} contains a control character"
    return None


def is_id(value: Any) -> bool:
    return isinstance(value, str) and ID_RE.match(value) is not None


# --- the checks ---------------------------------------------------------------------------

_SHAPES = ('expected a DescribeAssetModel or CreateAssetModel object (assetModelName), a DescribeAsset object '
           '(assetName, assetModelId) or a bundle {"assetModels": [...], "assets": [...], "associations": [...]}')
_BUNDLE_KEYS = ("assetModels", "assets", "associations")


class _Builder:
    """Collects documents, then resolves references across all of them and checks everything."""

    def __init__(self, problems: list[str], base: Catalog | None = None) -> None:
        self.problems = problems
        self._base = base or Catalog()
        self._models: list[AssetModel] = []
        self._raw_assets: list[tuple[str, str, Mapping[str, Any]]] = []
        self._raw_associations: list[tuple[str, Any]] = []

    def _problem(self, line: str) -> None:
        self.problems.append(line)

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

    # -- member helpers

    def _text(self, doc: Mapping[str, Any], key: str, where: str, *, required: bool = False,
              max_len: int = 256) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self._problem(f"{where}: missing required member '{key}'")
            return None
        err = check_text(value, key, max_len=max_len)
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
        if value is not None and not (isinstance(value, str) and 2 <= len(value) <= 128
                                      and EXTERNAL_ID_RE.match(value)):
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

    def _add_model(self, source: str, doc: Mapping[str, Any], label: str) -> None:
        name = self._text(doc, "assetModelName", label, required=True)
        if name is None:
            return
        where = f"{source}: model '{name}'"
        model_id = self._id(doc, "assetModelId", where) or generated_id("asset-model", name)
        if doc.get("assetModelCompositeModels"):
            logger.warning("%s: composite models are not supported yet; ignored", where)
        raw_props = self._list(doc, "assetModelProperties", where)
        if len(raw_props) > MAX_PROPERTIES:
            self._problem(f"{where}: {len(raw_props)} properties; an asset model has at most {MAX_PROPERTIES}")
        props = [p for i, raw in enumerate(raw_props) if (p := self._model_property(raw, model_id, where, i))]
        hierarchies = [h for i, raw in enumerate(self._list(doc, "assetModelHierarchies", where))
                       if (h := self._model_hierarchy(raw, model_id, where, i))]
        self._unique(props, where, "property")
        self._unique(hierarchies, where, "hierarchy")
        self._unique([*props, *hierarchies], where, "property or hierarchy", keys=("id",))
        self._models.append(AssetModel(
            id=model_id, name=name, properties=tuple(props), hierarchies=tuple(hierarchies),
            description=self._text(doc, "assetModelDescription", where, max_len=2048),
            external_id=self._external_id(doc, "assetModelExternalId", where),
            model_type=self._enum(doc.get("assetModelType"), MODEL_TYPES, "assetModelType", where) or "ASSET_MODEL",
            source=source,
            created=parse_date(doc.get("assetModelCreationDate")),
            updated=parse_date(doc.get("assetModelLastUpdateDate")),
        ))

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

    def _model_property(self, raw: Any, model_id: str, model_where: str, index: int) -> ModelProperty | None:
        if not isinstance(raw, Mapping):
            self._problem(f"{model_where} property #{index + 1}: must be an object")
            return None
        name = self._text(raw, "name", f"{model_where} property #{index + 1}", required=True)
        if name is None:
            return None
        where = f"{model_where} property '{name}'"
        pid = self._id(raw, "id", where) or generated_id(model_id, "property", name)
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
                err = check_text(default, "defaultValue", max_len=1024) or _default_problem(default, data_type)
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
        if not isinstance(raw, Mapping):
            self._problem(f"{model_where} hierarchy #{index + 1}: must be an object")
            return None
        name = self._text(raw, "name", f"{model_where} hierarchy #{index + 1}", required=True)
        if name is None:
            return None
        where = f"{model_where} hierarchy '{name}'"
        child = self._text(raw, "childAssetModelId", where, required=True)
        hid = self._id(raw, "id", where) or generated_id(model_id, "hierarchy", name)
        if child is None:
            return None
        return ModelHierarchy(hid, name, child, self._external_id(raw, "externalId", where))

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
        asset_id = self._id(doc, "assetId", where) or generated_id("asset", model.id, name)
        given: dict[str, AssetProperty] = {}
        for i, raw in enumerate(self._list(doc, "assetProperties", where)):
            prop = self._asset_property(raw, model, where, i)
            if prop is not None and prop.id in given:
                self._problem(f"{where} property '{prop.name}': listed twice")
            elif prop is not None:
                given[prop.id] = prop
        for i, raw in enumerate(self._list(doc, "assetHierarchies", where)):
            ref = (raw.get("id") or raw.get("name")) if isinstance(raw, Mapping) else None
            if not isinstance(ref, str) or model.hierarchy(ref) is None:
                self._problem(f"{where} hierarchy '{ref or f'#{i + 1}'}': no such hierarchy in model '{model.name}'")
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


def _default_problem(default: str, data_type: str | None) -> str | None:
    """An attribute default must read as its data type (SiteWise stores defaults as strings)."""
    try:
        if data_type == "INTEGER":
            int(default)
        elif data_type == "DOUBLE":
            float(default)
        elif data_type == "BOOLEAN" and default not in ("true", "false"):
            raise ValueError(default)
    except ValueError:
        return f"defaultValue {default!r} is not a {data_type}"
    return None
