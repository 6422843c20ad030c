"""Asset models and assets as typed immutable values: what SiteWise's JSON shapes hold, resolved.

The values here carry no behaviour but small lookups. Building them from SiteWise JSON
documents (and checking those) is :mod:`asset_models.documents`; rendering them back into
SiteWise's response shapes is the API's job (``api/sitewise/render.py``); reading files is the
runtime's (``sitewise_edge/runtime/models.py``).

    catalog = build_catalog([("plant.json", doc)])          # asset_models.documents
    model = catalog.models[0]
    model.property("Temperature").kind is PropertyKind.MEASUREMENT

Transforms and metrics are kept as data (expression, variables, window); compiling and
computing them is the job of the expression engine.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DATA_TYPES: tuple[str, ...] = ("STRING", "INTEGER", "DOUBLE", "BOOLEAN", "STRUCT")
MODEL_TYPES: tuple[str, ...] = ("ASSET_MODEL", "COMPONENT_MODEL", "INTERFACE")
MAX_PROPERTIES = 200
MAX_ALIAS = 2048
MAX_EXPRESSION = 1024
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


@dataclass(frozen=True, slots=True)
class ModelHierarchy:
    """An ``AssetModelHierarchy``; ``child_model_id`` is resolved to the child model's UUID."""

    id: str
    name: str
    child_model_id: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class CompositeModel:
    """An ``AssetModelCompositeModel`` (an ``AWS/ALARM`` alarm, a component): kept and described, not computed.

    Its properties are not the model's: no alias maps onto them and no expression reads them. Every
    asset of the model has it under the same id, as it has the model's properties.
    """

    id: str
    name: str
    type: str
    properties: tuple[ModelProperty, ...] = ()
    description: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class AssetModel:
    """An asset model: properties and hierarchies; ``source`` names the file (or operation) it came from."""

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
    composite_models: tuple[CompositeModel, ...] = ()

    def property(self, ref: str) -> ModelProperty | None:
        """A property by id, ``externalId:...`` or name (the forms expressions may use)."""
        return _find(self.properties, ref)

    def composite_model(self, ref: str) -> CompositeModel | None:
        """A composite model by id or ``externalId:...``."""
        found: CompositeModel | None = _find(self.composite_models, ref)
        return found if found is not None and ref != found.name else None

    def hierarchy(self, ref: str) -> ModelHierarchy | None:
        """A hierarchy by id, ``externalId:...`` or name."""
        return _find(self.hierarchies, ref)


@dataclass(frozen=True, slots=True)
class Notification:
    """An asset property's MQTT notification: its topic and ``ENABLED`` or ``DISABLED``."""

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
    """A hierarchy of the asset's model, as the asset lists it (the model's id and name)."""

    id: str
    name: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset of a model: one ``AssetProperty`` per model property, in the model's order."""

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
        """A property by its UUID."""
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


def _find(items: Iterable[Any], ref: str) -> Any:
    """By ``externalId:...``, else by id, else by name (names are for hand-written files)."""
    if ref.startswith(EXTERNAL_PREFIX):
        ext = ref[len(EXTERNAL_PREFIX):]
        return next((i for i in items if i.external_id == ext), None)
    items = tuple(items)
    return next((i for i in items if i.id == ref), None) or next((i for i in items if i.name == ref), None)
