"""Persistence of the asset models and assets created or changed through the control-plane API.

The configuration's ``models`` files are read-only sources. What the API creates or changes
lives under ``<data_dir>/models/``, in the shapes the gateway loads anyway:

    asset-models/<id>.json    a DescribeAssetModel body, one per model created through the API
    assets/<id>.json          a DescribeAsset body: an asset created through the API, or an
                              *override* of an asset of the configuration (its aliases,
                              notification states and units as the API last set them)
    associations.json         {"associations": [...], "disassociations": [...]}: the links added
                              and removed through the API, relative to the configuration's

At start, :meth:`ModelStore.open` loads the configuration's files, then lays these over them:
an asset file replaces the configuration's asset of the same id, the associations are the
configuration's minus ``disassociations`` plus ``associations``. Every file is written whole
and atomically (temporary file, fsync, rename, fsync of the folder): a crash leaves the old
version or the new one, never half of one.

:class:`TokenCache` remembers ``clientToken`` values, so that a retried request gets the
answer of the first one (SiteWise's idempotency).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asset_models.model import Association, Catalog, add_documents, load_catalog
from asset_models.registry import Change, Registry
from sitewise_edge.errors import ApiError, ModelError
from sitewise_edge.files import fsync_dir, write_bytes_atomic

logger = logging.getLogger(__name__)

MODELS_DIR = "asset-models"
ASSETS_DIR = "assets"
ASSOCIATIONS_FILE = "associations.json"
TOKENS_KEPT = 10_000


class ModelStore:
    """The ``<data_dir>/models`` folder. ``save`` runs in a worker thread, one change at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._baseline: frozenset[Association] = frozenset()

    def open(self, config_paths: Sequence[Path], loaded_at: float | None = None) -> Registry:
        """The registry at start: the configuration's files, then this folder over them.

        Raises ModelError listing every problem (in the configuration's files or in this folder).
        """
        base = load_catalog(config_paths) if config_paths else Catalog()
        sources = {m.id: m.source for m in base.models} | {a.id: a.source for a in base.assets}
        return Registry(self.overlay(base), loaded_at, sources)

    def overlay(self, base: Catalog) -> Catalog:
        """``base`` (the configuration's catalog) with what the API created and changed laid over it."""
        self._baseline = frozenset(base.associations)
        if not self.directory.is_dir():
            return base
        problems: list[str] = []
        model_docs = _read_folder(self.directory / MODELS_DIR, problems)
        asset_docs = _read_folder(self.directory / ASSETS_DIR, problems)
        added, removed = self._read_associations(problems)
        if problems:
            raise ModelError("\n".join(problems))
        config_models = {m.id: m.source for m in base.models}
        documents: list[tuple[str, Any]] = []
        for source, doc in model_docs:
            model_id = doc.get("assetModelId") if isinstance(doc, Mapping) else None
            if model_id in config_models:
                logger.warning("%s: asset model %s is also defined in %s; that definition wins", source, model_id,
                               config_models[model_id])
                continue
            documents.append((source, doc))
        overridden = {doc.get("assetId") for _, doc in asset_docs if isinstance(doc, Mapping)}
        documents += asset_docs
        if added:
            documents.append((str(self.directory / ASSOCIATIONS_FILE), {"associations": added}))
        start = Catalog(base.models, tuple(a for a in base.assets if a.id not in overridden),
                        tuple(a for a in base.associations if a not in removed))
        catalog = add_documents(start, documents)
        logger.info("%s: %d asset models, %d assets and %d association changes from the API", self.directory,
                    len(model_docs), len(asset_docs), len(added) + len(removed))
        return catalog

    def _read_associations(self, problems: list[str]) -> tuple[list[Any], set[Association]]:
        path = self.directory / ASSOCIATIONS_FILE
        if not path.is_file():
            return [], set()
        doc = _read_json(path, problems)
        if doc is None:
            return [], set()
        if not isinstance(doc, Mapping) or not all(isinstance(doc.get(k, []), list)
                                                   for k in ("associations", "disassociations")):
            problems.append(f"{path}: expected {{\"associations\": [...], \"disassociations\": [...]}}")
            return [], set()
        removed = {Association(d["parentAssetId"], d["hierarchyId"], d["childAssetId"])
                   for d in doc.get("disassociations", []) if isinstance(d, Mapping)
                   and all(isinstance(d.get(k), str) for k in ("parentAssetId", "hierarchyId", "childAssetId"))}
        return list(doc.get("associations", [])), removed

    def save(self, change: Change) -> None:
        """Write (or remove) the files of what ``change`` touched. Raises OSError when the disk fails."""
        registry = change.registry
        for model_id in sorted(change.models):
            path = self.directory / MODELS_DIR / f"{model_id}.json"
            try:
                body = registry.describe_asset_model(model_id)
            except ApiError:  # deleted
                _remove(path)
            else:
                write_json_atomic(path, body)
        for asset_id in sorted(change.assets):
            path = self.directory / ASSETS_DIR / f"{asset_id}.json"
            try:
                body = registry.describe_asset(asset_id)
            except ApiError:
                _remove(path)
            else:
                write_json_atomic(path, body)
        if change.associations:
            current = set(registry.catalog.associations)
            write_json_atomic(self.directory / ASSOCIATIONS_FILE, {
                "associations": [_association_json(a) for a in sorted(current - self._baseline, key=_key)],
                "disassociations": [_association_json(a) for a in sorted(self._baseline - current, key=_key)],
            })


class TokenCache:
    """``clientToken`` -> (request, response) of the operations that succeeded; the oldest are forgotten first.

    Kept in memory: a retry after a restart of the gateway runs again (and then usually meets
    ResourceAlreadyExistsException, as a create whose token SiteWise has forgotten does).
    """

    def __init__(self, size: int = TOKENS_KEPT) -> None:
        self.size = size
        self._seen: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def replay(self, token: str | None, request: str) -> dict[str, Any] | None:
        """The response to give again for a retried request, or None to run it.

        Raises InvalidRequestException when the token came with a different request.
        """
        if token is None or token not in self._seen:
            return None
        first, response = self._seen[token]
        if first != request:
            raise ApiError("InvalidRequestException",
                           f"The clientToken {token} was already used for a different request.")
        return response

    def remember(self, token: str | None, request: str, response: dict[str, Any]) -> None:
        if token is None:
            return
        self._seen[token] = (request, response)
        self._seen.move_to_end(token)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` whole or not at all (rename over the old file, fsyncs)."""
    write_bytes_atomic(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        fsync_dir(path.parent)


def _read_folder(folder: Path, problems: list[str]) -> list[tuple[str, Any]]:
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        doc = _read_json(path, problems)
        if doc is not None:
            out.append((str(path), doc))
    return out


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.append(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
    return None


def _key(link: Association) -> tuple[str, str, str]:
    return link.parent_id, link.hierarchy_id, link.child_id


def _association_json(link: Association) -> dict[str, str]:
    return {"parentAssetId": link.parent_id, "hierarchyId": link.hierarchy_id, "childAssetId": link.child_id}
