"""The asset models on disk: the configuration's model files, and what the control-plane API changed.

    registry = load_registry([Path("models/")])            # files and folders; ModelInvalid lists every problem
    store = ModelStore(data_dir / "models")
    registry = store.open([Path("models/")])               # the files, then data_dir/models laid over them
    store.save(change)                                     # in a worker thread, before the registry is swapped

The asset model layer (``asset_models``) is pure: it builds a catalog from parsed documents.
Reading and writing files is here, in the runtime, because the runtime owns the registry's
life cycle (load at start, persist each change, swap), and because what it writes is a
``DescribeAssetModel`` / ``DescribeAsset`` body, which the API renders (storage, the
historian of samples, may not import the API).

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
answer of the first one (SiteWise's idempotency). It is runtime state, not model logic: the
gateway consults it under the same lock that applies one change at a time.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from api.sitewise import render
from asset_models.documents import add_documents, build_catalog
from asset_models.errors import ModelInvalid, ModelNotFound
from asset_models.model import Association, Catalog
from asset_models.registry import Change, Registry
from sitewise_edge.clock import SYSTEM_CLOCK
from sitewise_edge.errors import ApiError
from sitewise_edge.files import fsync_dir, loads_bounded, write_json_atomic

log = logging.getLogger(__name__)

MODELS_DIR = "asset-models"
ASSETS_DIR = "assets"
ASSOCIATIONS_FILE = "associations.json"
TOKENS_KEPT = 10_000


# --- reading model files ------------------------------------------------------------------------


def read_documents(paths: Sequence[Path], problems: list[str]) -> list[tuple[str, Any]]:
    """(file name, parsed JSON) of files and folders (a folder: every ``*.json`` directly inside, sorted).

    A missing path, a file that cannot be read or is no JSON adds a line to ``problems``.
    """
    documents: list[tuple[str, Any]] = []
    for path in expand_paths(paths, problems):
        doc = _read_json(path, problems)
        if doc is not None:
            documents.append((str(path), doc))
    return documents


def expand_paths(paths: Sequence[Path], problems: list[str]) -> list[Path]:
    """The files ``paths`` name: files as they are, folders as their ``*.json`` files in name order."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return out


def load_catalog(paths: Sequence[Path]) -> Catalog:
    """Read files and folders and build a :class:`Catalog`; raises ModelInvalid listing every problem, one a line."""
    problems: list[str] = []
    documents = read_documents(paths, problems)
    catalog = build_catalog(documents, problems)
    log.info("loaded %d asset models and %d assets from %d files",
                len(catalog.models), len(catalog.assets), len(documents))
    return catalog


def load_registry(paths: Sequence[Path], loaded_at: float | None = None) -> Registry:
    """The registry of model files and folders (no ``data_dir/models``: ``sitewise-edge validate``, tests)."""
    return Registry(load_catalog(paths), SYSTEM_CLOCK.time() if loaded_at is None else loaded_at)


# --- data_dir/models ------------------------------------------------------------------------------


class ModelStore:
    """The ``<data_dir>/models`` folder. ``save`` runs in a worker thread, one change at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._baseline: frozenset[Association] = frozenset()

    def open(self, config_paths: Sequence[Path], loaded_at: float | None = None) -> Registry:
        """The registry at start: the configuration's files, then this folder over them.

        Raises ModelInvalid listing every problem (in the configuration's files or in this folder).
        """
        base = load_catalog(config_paths) if config_paths else Catalog()
        sources = {m.id: m.source for m in base.models} | {a.id: a.source for a in base.assets}
        loaded_at = SYSTEM_CLOCK.time() if loaded_at is None else loaded_at
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
            raise ModelInvalid(problems)
        config_models = {m.id: m.source for m in base.models}
        documents: list[tuple[str, Any]] = []
        for source, doc in model_docs:
            model_id = doc.get("assetModelId") if isinstance(doc, Mapping) else None
            if model_id in config_models:
                log.warning("%s: asset model %s is also defined in %s; that definition wins", source, model_id,
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
        log.info("%s: %d asset models, %d assets and %d association changes from the API", self.directory,
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
                body = render.describe_asset_model(registry, model_id)
            except ModelNotFound:  # deleted
                _remove(path)
            else:
                _write_json(path, body)
        for asset_id in sorted(change.assets):
            path = self.directory / ASSETS_DIR / f"{asset_id}.json"
            try:
                body = render.describe_asset(registry, asset_id)
            except ModelNotFound:
                _remove(path)
            else:
                _write_json(path, body)
        if change.associations:
            current = set(registry.catalog.associations)
            _write_json(self.directory / ASSOCIATIONS_FILE, {
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
        """Keep the response of a request that succeeded (nothing without a token)."""
        if token is None:
            return
        self._seen[token] = (request, response)
        self._seen.move_to_end(token)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def _write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, data, indent=2, sort_keys=True)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        fsync_dir(path.parent)


def _read_folder(folder: Path, problems: list[str]) -> list[tuple[str, Any]]:
    if not folder.is_dir():
        return []
    return read_documents([folder], problems)


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return loads_bounded(path.read_bytes())
    except json.JSONDecodeError as exc:
        problems.append(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
    except ValueError as exc:  # nested too deeply, a key written twice
        problems.append(f"{path}: not a SiteWise document: {exc}")
    return None


def _key(link: Association) -> tuple[str, str, str]:
    return link.parent_id, link.hierarchy_id, link.child_id


def _association_json(link: Association) -> dict[str, str]:
    return {"parentAssetId": link.parent_id, "hierarchyId": link.hierarchy_id, "childAssetId": link.child_id}
