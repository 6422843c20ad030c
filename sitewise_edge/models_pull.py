"""``sitewise-edge models pull``: copy asset models and assets from a SiteWise endpoint into files.

    client = make_client("http://gateway:8080", "eu-west-1")   # endpoint_url None: AWS itself
    result = pull(client, Path("models"))                      # or pull(client, out, ["<model-id>"])

The files are what the gateway loads as they are (point a ``models`` entry of the
configuration at the folder):

    asset-model-<id>.json   a DescribeAssetModel response
    asset-<id>.json         a DescribeAsset response (aliases included)
    associations.json       {"associations": [{parentAssetId, hierarchyId, childAssetId}, ...]},
                            since DescribeAsset does not list child assets

Everything is read with boto3 (paginators for ListAssetModels, ListAssets and
ListAssociatedAssets), so credentials come from the standard AWS chain. Given model ids,
the models their hierarchies hold are pulled too, so that the folder loads on its own.
Timestamps are written as epoch seconds. Files are written whole (temporary file, rename);
files of an earlier pull that this one did not write are left alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from sitewise_edge.errors import SitewiseEdgeError
from sitewise_edge.files import write_bytes_atomic

log = logging.getLogger(__name__)

ASSOCIATIONS_FILE = "associations.json"


@dataclass
class PullResult:
    models: int = 0
    assets: int = 0
    associations: int = 0
    files: list[Path] = field(default_factory=list)


def make_client(endpoint_url: str | None, region: str | None) -> Any:
    """An ``iotsitewise`` client. A given endpoint (a gateway, a local endpoint) gets no host prefix.

    Raises SitewiseEdgeError when no region is given nor configured (``--region``, ``AWS_REGION``,
    ``AWS_DEFAULT_REGION`` or the AWS configuration file): boto3 cannot sign a request without one.
    """
    config = botocore.config.Config(inject_host_prefix=False) if endpoint_url else None
    try:
        return boto3.client("iotsitewise", region_name=region, endpoint_url=endpoint_url, config=config)
    except botocore.exceptions.NoRegionError:
        hint = " (a gateway accepts any region, e.g. --region us-east-1)" if endpoint_url else ""
        raise SitewiseEdgeError("models pull: no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION"
                                f"{hint}") from None
    except botocore.exceptions.BotoCoreError as exc:  # a malformed region or endpoint URL
        raise SitewiseEdgeError(f"models pull: {exc}") from None


def pull(client: Any, out: Path, asset_model_ids: Sequence[str] = (),
         progress: Callable[[str], None] = log.info) -> PullResult:
    """Describe the models (all, or these and their child models) and all their assets; write them to ``out``.

    Raises SitewiseEdgeError when the endpoint refuses a call or cannot be reached.
    """
    try:
        return _pull(client, Path(out), list(asset_model_ids), progress)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SitewiseEdgeError(f"models pull: {exc}") from None


def _pull(client: Any, out: Path, wanted: list[str], progress: Callable[[str], None]) -> PullResult:
    if not wanted:
        wanted = [m["id"] for page in client.get_paginator("list_asset_models").paginate()
                  for m in page["assetModelSummaries"]]
    models: dict[str, dict[str, Any]] = {}
    queue, asked = list(wanted), set()
    while queue:
        ref = queue.pop(0)
        if ref in asked:
            continue
        asked.add(ref)
        model = _plain(client.describe_asset_model(assetModelId=ref))
        if model["assetModelId"] in models:
            continue
        models[model["assetModelId"]] = model
        queue += [h["childAssetModelId"] for h in model.get("assetModelHierarchies", [])]
    progress(f"{len(models)} asset models")

    assets: dict[str, dict[str, Any]] = {}
    for model_id, model in models.items():
        if model.get("assetModelType", "ASSET_MODEL") != "ASSET_MODEL":
            continue
        for page in client.get_paginator("list_assets").paginate(assetModelId=model_id, filter="ALL"):
            for summary in page["assetSummaries"]:
                assets[summary["id"]] = _plain(client.describe_asset(assetId=summary["id"]))
    progress(f"{len(assets)} assets")

    associations = []
    paginator = client.get_paginator("list_associated_assets")
    for asset_id, asset in assets.items():
        for hierarchy in asset.get("assetHierarchies", []):
            for page in paginator.paginate(assetId=asset_id, hierarchyId=hierarchy["id"],
                                           traversalDirection="CHILD"):
                for child in page["assetSummaries"]:
                    if child["id"] not in assets:
                        log.warning("asset %s under %s (hierarchy %s) is of a model not pulled; left out",
                                    child["id"], asset_id, hierarchy["name"])
                        continue
                    associations.append({"parentAssetId": asset_id, "hierarchyId": hierarchy["id"],
                                         "childAssetId": child["id"]})

    result = PullResult(len(models), len(assets), len(associations))
    for model_id, model in models.items():
        result.files.append(_write(out / f"asset-model-{model_id}.json", model))
    for asset_id, asset in assets.items():
        result.files.append(_write(out / f"asset-{asset_id}.json", asset))
    if associations:
        result.files.append(_write(out / ASSOCIATIONS_FILE, {"associations": associations}))
    progress(f"wrote {len(result.files)} files to {out}")
    return result


def _plain(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response as the JSON the wire carried: no ResponseMetadata, timestamps as epoch seconds."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return _jsonable(body)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _write(path: Path, data: Any) -> Path:
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    return path
