"""SiteWise asset models and assets (their own JSON shapes), the alias mapping, transforms and metrics.

Pure: no file I/O (the runtime reads the documents: ``sitewise_edge/runtime/models.py``), time passed in.

    catalog = build_catalog([(source, document), ...])     # ModelInvalid lists every problem
    registry = Registry(catalog, loaded_at)
    accepted, rejected, reasons = check_batch(batch, registry)
"""

from asset_models.documents import add_documents, build_catalog
from asset_models.errors import ModelConflict, ModelExists, ModelInUse, ModelInvalid, ModelNotFound
from asset_models.mapping import check_batch, resolve_stream
from asset_models.metrics import MetricPlan
from asset_models.model import Asset, AssetModel, Catalog, PropertyKind
from asset_models.registry import Change, PropertyRef, Registry
from asset_models.transforms import TransformEngine, TransformPlan

__all__ = [
    "Asset", "AssetModel", "Catalog", "Change", "MetricPlan", "ModelConflict", "ModelExists", "ModelInUse",
    "ModelInvalid", "ModelNotFound", "PropertyKind", "PropertyRef", "Registry", "TransformEngine", "TransformPlan",
    "add_documents", "build_catalog", "check_batch", "resolve_stream",
]
