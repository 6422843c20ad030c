"""The runtime's model files (sitewise_edge/runtime/models.py): reading model files, data_dir/models, clientToken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.sitewise import render
from asset_models.errors import ModelInvalid
from sitewise_edge.errors import ApiError
from sitewise_edge.runtime.models import ModelStore, TokenCache, read_documents
from tests.asset_models.test_models import LINE, MODEL, write

NOW = 1_700_000_000.0


def test_read_documents_takes_files_and_the_json_files_of_folders(tmp_path: Path) -> None:
    write(tmp_path / "models" / "b.json", {"b": 1})
    write(tmp_path / "models" / "a.json", {"a": 1})
    write(tmp_path / "models" / "notes.txt", "not json")
    write(tmp_path / "one.json", [1])
    problems: list[str] = []
    docs = read_documents([tmp_path / "one.json", tmp_path / "models", tmp_path / "gone"], problems)
    assert [(Path(s).name, d) for s, d in docs] == [("one.json", [1]), ("a.json", {"a": 1}), ("b.json", {"b": 1})]
    assert problems == [f"{tmp_path / 'gone'}: no such file or directory"]


def test_saved_changes_are_describe_bodies_and_load_again(tmp_path: Path) -> None:
    config = write(tmp_path / "config" / "plant.json", {"assetModels": [MODEL, LINE]})
    store = ModelStore(tmp_path / "data" / "models")
    registry = store.open([config], loaded_at=NOW)
    machine = next(m for m in registry.models() if m.name == "Machine")
    line = next(m for m in registry.models() if m.name == "Line")
    created = registry.create_asset({"assetName": "Press9", "assetModelId": machine.id}, NOW)
    store.save(created)
    parent = created.registry.create_asset({"assetName": "Line 9", "assetModelId": line.id}, NOW)
    store.save(parent)
    linked = parent.registry.associate_assets(parent.subject, {"hierarchyId": line.hierarchies[0].id,
                                                              "childAssetId": created.subject})
    store.save(linked)

    saved = json.loads((store.directory / "assets" / f"{created.subject}.json").read_text())
    assert saved == render.describe_asset(linked.registry, created.subject)
    again = ModelStore(store.directory).open([config], loaded_at=NOW)
    assert [a.name for a in again.children(parent.subject)] == ["Press9"]
    assert render.describe_asset(again, created.subject) == saved

    unlinked = again.disassociate_assets(parent.subject, {"hierarchyId": line.hierarchies[0].id,
                                                          "childAssetId": created.subject})
    store = ModelStore(store.directory)
    store.open([config], loaded_at=NOW)
    store.save(unlinked)
    deleted = unlinked.registry.delete_asset(created.subject)
    store.save(deleted)
    assert not (store.directory / "assets" / f"{created.subject}.json").exists()
    assert json.loads((store.directory / "associations.json").read_text()) == {"associations": [],
                                                                               "disassociations": []}


def test_a_broken_file_in_data_dir_names_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    write(store.directory / "assets" / "x.json", "{oops")
    with pytest.raises(ModelInvalid) as caught:
        store.open([])
    assert caught.value.problems[0].startswith(f"{store.directory / 'assets' / 'x.json'}: not valid JSON")


def test_token_cache_replays_the_same_request_and_refuses_another() -> None:
    tokens = TokenCache(size=2)
    assert tokens.replay("t1", "request") is None
    tokens.remember("t1", "request", {"assetId": "a"})
    assert tokens.replay("t1", "request") == {"assetId": "a"}
    with pytest.raises(ApiError, match="already used for a different request") as caught:
        tokens.replay("t1", "another request")
    assert caught.value.code == "InvalidRequestException"
    tokens.remember("t2", "r2", {})
    tokens.remember("t3", "r3", {})  # t1 is the oldest: forgotten
    assert tokens.replay("t1", "another request") is None
    tokens.remember(None, "r", {})
    assert tokens.replay(None, "r") is None
