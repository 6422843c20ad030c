"""Asset models and assets: loading, validation messages, lookups, SiteWise-shaped responses, mapping."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from api.sitewise.errors import sitewise_error
from asset_models.checks import ID_RE
from asset_models.documents import build_catalog
from asset_models.errors import ModelNotFound
from asset_models.mapping import check_batch, resolve_stream
from asset_models.model import PropertyKind
from asset_models.registry import PropertyRef, Registry
from sitewise_edge.errors import ModelError
from sitewise_edge.runtime.models import load_catalog, load_registry
from sitewise_edge.samples import SCHEMA, Quality, from_columns
from sitewise_edge.simulators import plant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models" / "plant.json"
MEASUREMENTS = ("Speed", "Temperature", "Pressure", "State", "GoodCount", "BadCount", "Running", "Status")
LOADED_AT = 1_700_000_000.0


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLE], loaded_at=LOADED_AT)


def asset_named(registry: Registry, name: str) -> Any:
    return next(a for a in registry.assets() if a.name == name)


def model_named(registry: Registry, name: str) -> Any:
    return next(m for m in registry.models() if m.name == name)


# --- the example plant ------------------------------------------------------------------------


def test_example_loads_the_plant(registry: Registry) -> None:
    assert [m.name for m in registry.models()] == ["Line", "Machine"]
    assert [a.name for a in registry.assets()] == ["Line 1", "Oven1", "Press1", "Press2"]
    machine = model_named(registry, "Machine")
    kinds = {p.name: (p.kind, p.data_type) for p in machine.properties}
    assert kinds["Speed"] == (PropertyKind.MEASUREMENT, "DOUBLE")
    assert kinds["State"] == (PropertyKind.MEASUREMENT, "INTEGER")
    assert kinds["Running"] == (PropertyKind.MEASUREMENT, "BOOLEAN")
    assert kinds["Status"] == (PropertyKind.MEASUREMENT, "STRING")
    assert kinds["Ideal Run Rate"] == (PropertyKind.ATTRIBUTE, "DOUBLE")
    transform = machine.property("Temperature F")
    assert transform.expression == "9/5 * temp_c + 32"
    assert transform.variables[0].name == "temp_c"
    assert transform.variables[0].property_id == machine.property("Temperature").id
    line = asset_named(registry, "Line 1")
    assert [a.name for a in registry.children(line.id)] == ["Oven1", "Press1", "Press2"]


def test_every_example_alias_is_the_simulator_alias(registry: Registry) -> None:
    for machine in plant.MACHINES:
        asset = asset_named(registry, machine)
        aliases = {p.name: p.alias for p in asset.properties if p.alias is not None}
        assert aliases == {signal: plant.alias(machine, signal) for signal in MEASUREMENTS}
    expected = sorted(plant.alias(m, s) for m in plant.MACHINES for s in MEASUREMENTS)
    assert registry.measurement_aliases() == expected


def test_example_ids_are_fixed_uuids() -> None:
    doc = json.loads(EXAMPLE.read_text())
    ids = [m["assetModelId"] for m in doc["assetModels"]] + [a["assetId"] for a in doc["assets"]]
    ids += [p["id"] for m in doc["assetModels"] for p in m["assetModelProperties"]]
    assert all(ID_RE.match(i) and i[14] == "4" for i in ids)
    assert len(set(ids)) == len(ids)


# --- file shapes --------------------------------------------------------------------------------

MODEL = {
    "assetModelName": "Machine",
    "assetModelProperties": [
        {"name": "Speed", "dataType": "DOUBLE", "unit": "rpm", "type": {"measurement": {}}},
        {"name": "State", "dataType": "INTEGER", "type": {"measurement": {}}},
        {"name": "Maker", "dataType": "STRING", "type": {"attribute": {"defaultValue": "ACME"}}},
        {"name": "Speed x2", "dataType": "DOUBLE", "type": {"transform": {
            "expression": "2 * s", "variables": [{"name": "s", "value": {"propertyId": "Speed"}}]}}},
        {"name": "Max speed", "dataType": "DOUBLE", "type": {"metric": {
            "expression": "max(s)", "variables": [{"name": "s", "value": {"propertyId": "Speed"}}],
            "window": {"tumbling": {"interval": "1h"}}}}},
    ],
}
ASSET = {
    "assetName": "Press1",
    "assetModelId": "Machine",
    "assetProperties": [{"name": "Speed", "alias": "/p1/speed"}, {"name": "State", "alias": "/p1/state"}],
}


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_create_asset_model_request_gets_stable_generated_ids(tmp_path: Path) -> None:
    write(tmp_path / "m.json", MODEL)
    write(tmp_path / "a.json", ASSET)
    first, second = load_registry([tmp_path]), load_registry([tmp_path])
    ids = lambda r: [(m.id, [p.id for p in m.properties]) for m in r.models()]  # noqa: E731
    assert ids(first) == ids(second)
    assert first.assets()[0].id == second.assets()[0].id
    assert all(ID_RE.match(i) for i in [first.models()[0].id, first.assets()[0].id])


def test_folder_loads_sorted_json_files_only(tmp_path: Path) -> None:
    write(tmp_path / "b-asset.json", ASSET)
    write(tmp_path / "a-model.json", MODEL)
    write(tmp_path / "notes.txt", "not json")
    registry = load_registry([tmp_path])
    assert [a.name for a in registry.assets()] == ["Press1"]


@pytest.mark.parametrize("ref", ["Machine", "externalId:machine-v1", "ID"], ids=["name", "external-id", "id"])
def test_asset_references_its_model_by_name_external_id_or_id(tmp_path: Path, ref: str) -> None:
    model = {**MODEL, "assetModelId": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "assetModelExternalId": "machine-v1"}
    ref = model["assetModelId"] if ref == "ID" else ref
    catalog = build_catalog([("m.json", model), ("a.json", {**ASSET, "assetModelId": ref})])
    assert catalog.assets[0].model_id == "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


# --- validation messages ------------------------------------------------------------------------


def with_props(*props: dict[str, Any]) -> dict[str, Any]:
    return {"assetModelName": "Machine", "assetModelProperties": list(props)}


def meas(name: str, data_type: str = "DOUBLE") -> dict[str, Any]:
    return {"name": name, "dataType": data_type, "type": {"measurement": {}}}


def two_assets(alias1: str, alias2: str) -> dict[str, Any]:
    return {"assetModels": [MODEL], "assets": [
        ASSET, {"assetName": "Press2", "assetModelId": "Machine",
                "assetProperties": [{"name": "Speed", "alias": alias1}, {"name": "State", "alias": alias2}]}]}


LINE = {"assetModelName": "Line", "assetModelHierarchies": [{"name": "Machines", "childAssetModelId": "Machine"}]}
PRESS_ID, LINE_ID = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"


def plant_bundle(*associations: dict[str, Any]) -> dict[str, Any]:
    return {"assetModels": [MODEL, LINE], "assets": [
        {**ASSET, "assetId": PRESS_ID}, {"assetName": "Line 1", "assetModelId": "Line", "assetId": LINE_ID},
        {"assetName": "Line 2", "assetModelId": "Line"}], "associations": list(associations)}


def assoc(parent: str, hierarchy: str, child: str) -> dict[str, str]:
    return {"parentAssetId": parent, "hierarchyId": hierarchy, "childAssetId": child}


ERROR_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("not-json", {"models/x.json": "{nope"}, "models/x.json: not valid JSON: Expecting property name enclosed in "
                                             "double quotes at line 1 column 2"),
    ("a-list", {"models/x.json": [1]}, "models/x.json: unknown JSON shape (list); expected a DescribeAssetModel"),
    ("unknown-object", {"models/x.json": {"assetModelSummaries": []}},
     "models/x.json: unknown JSON shape (an object with members ['assetModelSummaries'])"),
    ("bundle-typo", {"models/x.json": {"assetModels": [], "asets": []}},
     "models/x.json: unknown bundle member(s) ['asets']"),
    ("model-without-name", {"models/x.json": {"assetModels": [{"assetModelProperties": []}]}},
     "models/x.json: assetModels[0]: missing required member 'assetModelName'"),
    ("missing-dataType", {"models/m.json": with_props({"name": "Speed", "type": {"measurement": {}}})},
     "models/m.json: model 'Machine' property 'Speed': missing required member 'dataType'"),
    ("unknown-dataType", {"models/m.json": with_props(meas("Speed", "FLOAT"))},
     "models/m.json: model 'Machine' property 'Speed': unknown dataType 'FLOAT'; "
     "expected STRING|INTEGER|DOUBLE|BOOLEAN|STRUCT"),
    ("missing-type", {"models/m.json": with_props({"name": "Speed", "dataType": "DOUBLE"})},
     "models/m.json: model 'Machine' property 'Speed': missing required member 'type'"),
    ("two-kinds", {"models/m.json": with_props({"name": "S", "dataType": "DOUBLE",
                                                "type": {"measurement": {}, "attribute": {}}})},
     "models/m.json: model 'Machine' property 'S': type must have exactly one of attribute, measurement, "
     "transform, metric; got ['measurement', 'attribute']"),
    ("bad-id", {"models/m.json": {**MODEL, "assetModelId": "ABC"}},
     "models/m.json: model 'Machine': assetModelId 'ABC' is not a UUID (36 lower-case hex characters, not all zero)"),
    ("zero-id", {"models/m.json": {**MODEL, "assetModelId": "00000000-0000-0000-0000-000000000000"}},
     "models/m.json: model 'Machine': assetModelId '00000000-0000-0000-0000-000000000000' is not a UUID"),
    ("duplicate-property", {"models/m.json": with_props(meas("Speed"), meas("Speed", "INTEGER"))},
     "models/m.json: model 'Machine' property 'Speed': defined twice"),
    ("too-many-properties", {"models/m.json": with_props(*(meas(f"P{i}") for i in range(201)))},
     "models/m.json: model 'Machine': 201 properties; an asset model has at most 200"),
    ("bad-default", {"models/m.json": with_props({"name": "Rate", "dataType": "DOUBLE",
                                                  "type": {"attribute": {"defaultValue": "fast"}}})},
     "models/m.json: model 'Machine' property 'Rate': defaultValue 'fast' is not a DOUBLE"),
    ("transform-without-variables", {"models/m.json": with_props(
        meas("T"), {"name": "F", "dataType": "DOUBLE", "type": {"transform": {"expression": "t"}}})},
     "models/m.json: model 'Machine' property 'F': missing required member 'variables'"),
    ("variable-unknown-property", {"models/m.json": with_props({"name": "F", "dataType": "DOUBLE", "type": {
        "transform": {"expression": "t", "variables": [{"name": "t", "value": {"propertyId": "Temp"}}]}}})},
     "models/m.json: model 'Machine' property 'F' variable 't': no property 'Temp' in model 'Machine'"),
    ("variable-bad-name", {"models/m.json": with_props(meas("T"), {"name": "F", "dataType": "DOUBLE", "type": {
        "transform": {"expression": "T", "variables": [{"name": "T", "value": {"propertyId": "T"}}]}}})},
     "models/m.json: model 'Machine' property 'F' variable 'T': name must match ^[a-z][a-z0-9_]*$ (1-64 characters)"),
    ("metric-without-window", {"models/m.json": with_props(meas("T"), {"name": "M", "dataType": "DOUBLE", "type": {
        "metric": {"expression": "max(t)", "variables": [{"name": "t", "value": {"propertyId": "T"}}]}}})},
     "models/m.json: model 'Machine' property 'M': missing required member 'window'"),
    ("unknown-child-model", {"models/m.json": LINE},
     "models/m.json: model 'Line' hierarchy 'Machines': no such asset model 'Machine'"),
    ("duplicate-model-id", {"models/a.json": {**MODEL, "assetModelId": PRESS_ID},
                            "models/b.json": {**MODEL, "assetModelName": "Oven", "assetModelId": PRESS_ID}},
     f"models/b.json: model 'Oven': id '{PRESS_ID}' is already used by model 'Machine' (models/a.json)"),
    ("duplicate-model-name", {"models/a.json": MODEL, "models/b.json": {**MODEL, "assetModelId": PRESS_ID}},
     "models/b.json: model 'Machine': name 'Machine' is already used by model 'Machine' (models/a.json)"),
    ("unknown-model", {"models/m.json": MODEL, "models/press.json": {**ASSET, "assetModelId": "Machne"}},
     "models/press.json: asset 'Press1': no such asset model 'Machne'"),
    ("asset-without-model", {"models/press.json": {"assetName": "Press1"}},
     "models/press.json: asset 'Press1': missing required member 'assetModelId'"),
    ("unknown-property", {"models/m.json": MODEL, "models/press.json": {
        **ASSET, "assetProperties": [{"name": "Temprature", "alias": "/p1/t"}]}},
     "models/press.json: asset 'Press1' property 'Temprature': no such property in model 'Machine'"),
    ("unknown-property-id", {"models/m.json": MODEL, "models/press.json": {
        **ASSET, "assetProperties": [{"id": PRESS_ID, "alias": "/p1/t"}]}},
     f"models/press.json: asset 'Press1' property '{PRESS_ID}': no such property in model 'Machine'"),
    ("dataType-differs", {"models/m.json": MODEL, "models/press.json": {
        **ASSET, "assetProperties": [{"name": "Speed", "dataType": "INTEGER"}]}},
     "models/press.json: asset 'Press1' property 'Speed': dataType 'INTEGER' differs from DOUBLE in model 'Machine'"),
    ("duplicate-asset-id", {"models/m.json": {"assetModels": [MODEL], "assets": [
        {**ASSET, "assetId": PRESS_ID}, {**ASSET, "assetName": "Press2", "assetProperties": [], "assetId": PRESS_ID}]}},
     f"models/m.json: asset 'Press2': id '{PRESS_ID}' is already used by asset 'Press1' (models/m.json)"),
    ("duplicate-alias", {"models/m.json": two_assets("/p1/speed", "/p2/state")},
     "models/m.json: asset 'Press2' property 'Speed': alias '/p1/speed' is already used by asset 'Press1' "
     "property 'Speed'"),
    ("alias-too-long", {"models/m.json": two_assets("/" + "x" * 2048, "/p2/state")},
     "models/m.json: asset 'Press2' property 'Speed': alias is 2049 characters long; at most 2048 are allowed"),
    ("alias-control-char", {"models/m.json": two_assets("/p2/\tspeed", "/p2/state")},
     "models/m.json: asset 'Press2' property 'Speed': alias '/p2/\\tspeed' contains a control character"),
    ("alias-empty", {"models/m.json": two_assets("", "/p2/state")},
     "models/m.json: asset 'Press2' property 'Speed': alias must be a non-empty string, got ''"),
    ("association-unknown-asset", {"models/p.json": plant_bundle(assoc(LINE_ID, "Machines", "Press9"))},
     "models/p.json: associations[0]: no such asset 'Press9'"),
    ("association-unknown-hierarchy", {"models/p.json": plant_bundle(assoc(LINE_ID, "Ovens", PRESS_ID))},
     "models/p.json: associations[0]: no hierarchy 'Ovens' in model 'Line' of asset 'Line 1'"),
    ("association-wrong-model", {"models/p.json": plant_bundle(assoc(LINE_ID, "Machines", "Line 2"))},
     "models/p.json: associations[0]: asset 'Line 2' is a 'Line' but hierarchy 'Machines' of asset 'Line 1' "
     "holds 'Machine' assets"),
    ("association-two-parents", {"models/p.json": plant_bundle(assoc(LINE_ID, "Machines", PRESS_ID),
                                                               assoc("Line 2", "Machines", PRESS_ID))},
     "models/p.json: associations[1]: asset 'Press1' already has a parent ('Line 1'); an asset has at most one"),
    ("association-missing-member", {"models/p.json": plant_bundle({"parentAssetId": LINE_ID, "hierarchyId": "x"})},
     "models/p.json: associations[0]: missing required member 'childAssetId'"),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_load_error_names_file_and_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          files: dict[str, Any], expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name, doc in files.items():
        write(Path(name), doc)
    with pytest.raises(ModelError) as caught:
        load_registry([Path("models")])
    lines = str(caught.value).splitlines()
    assert any(line.startswith(expected) for line in lines), lines


def test_every_problem_is_listed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(Path("models/m.json"), with_props(meas("Speed", "FLOAT"), meas("State", "REAL")))
    write(Path("models/press.json"), {**ASSET, "assetModelId": "Oven"})
    with pytest.raises(ModelError) as caught:
        load_registry([Path("models"), Path("missing.json")])
    assert str(caught.value).splitlines() == [
        "missing.json: no such file or directory",
        "models/m.json: model 'Machine' property 'Speed': unknown dataType 'FLOAT'; "
        "expected STRING|INTEGER|DOUBLE|BOOLEAN|STRUCT",
        "models/m.json: model 'Machine' property 'State': unknown dataType 'REAL'; "
        "expected STRING|INTEGER|DOUBLE|BOOLEAN|STRUCT",
        "models/press.json: asset 'Press1': no such asset model 'Oven'",
    ]


def test_cycle_is_refused() -> None:
    nested = {"assetModelName": "Area", "assetModelHierarchies": [{"name": "Areas", "childAssetModelId": "Area"}]}
    bundle = {"assetModels": [nested], "assets": [{"assetName": "A", "assetModelId": "Area"},
                                                  {"assetName": "B", "assetModelId": "Area"}],
              "associations": [assoc("A", "Areas", "B"), assoc("B", "Areas", "A")]}
    with pytest.raises(ModelError, match=r"b.json: associations\[1\]: associating 'A' under 'B' would make a cycle"):
        build_catalog([("b.json", bundle)])


def test_empty_registry() -> None:
    registry = Registry.empty()
    assert registry.models() == [] and registry.measurement_aliases() == []
    assert registry.assets() == [] and registry.assets(top_level=True) == []
    assert load_catalog([]).assets == ()


# --- lookups --------------------------------------------------------------------------------------

RICH = {
    "assetModels": [{**MODEL, "assetModelExternalId": "machine-v1", "assetModelDescription": "A machine"}],
    "assets": [{
        "assetName": "Press1", "assetModelId": "externalId:machine-v1", "assetExternalId": "press-1",
        "assetDescription": "The first press",
        "assetProperties": [
            {"name": "Speed", "alias": "/p1/speed", "unit": "rev/min",
             "notification": {"topic": "$aws/sitewise/asset-models/x/assets/y/properties/z", "state": "ENABLED"}},
            {"name": "Maker", "alias": "/p1/maker"},
            {"name": "Speed x2", "alias": "/p1/speed2"},
        ],
    }],
}


@pytest.fixture
def rich() -> Registry:
    return Registry(build_catalog([("rich.json", RICH)]), loaded_at=LOADED_AT)


def test_lookups_by_id_external_id_and_alias(rich: Registry) -> None:
    asset = rich.asset("externalId:press-1")
    assert rich.asset(asset.id) is asset
    assert rich.model("externalId:machine-v1") is rich.model(asset.model_id)
    speed = rich.property_by_alias("/p1/speed")
    assert speed == PropertyRef(asset.id, speed.property_id, "Press1", "Speed", "/p1/speed", "DOUBLE",
                                PropertyKind.MEASUREMENT, "rev/min")
    assert rich.property("externalId:press-1", speed.property_id) == speed
    assert rich.stream_of(asset.id, speed.property_id) == "/p1/speed"
    state = next(p for p in asset.properties if p.name == "State")
    synthetic = rich.stream_of(asset.id, state.id)
    assert synthetic == f"asset:{asset.id}/{state.id}"
    assert rich.property_of_stream(synthetic) == rich.property(asset.id, state.id)
    assert rich.property_of_stream("/p1/speed") == speed
    assert rich.property_of_stream("/nobody") is None
    assert rich.property_by_alias("/nobody") is None
    assert rich.measurement_aliases() == ["/p1/speed"]  # not the attribute's nor the transform's alias


@pytest.mark.parametrize(("call", "ref", "message"), [
    (lambda r: r.model("externalId:nope"), "externalId:nope", "Asset model externalId:nope does not exist."),
    (lambda r: r.hierarchy(r.asset("externalId:press-1"), "Machines"), "Machines",
     "Hierarchy Machines does not exist in asset "),
], ids=["model", "hierarchy"])
def test_not_found_names_the_reference(rich: Registry, call: Any, ref: str, message: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        call(rich)
    assert caught.value.ref == ref
    assert str(caught.value).startswith(message)


# --- check_batch ----------------------------------------------------------------------------------


class CountingRegistry(Registry):
    """Counts stream lookups: check_batch must look each distinct stream up once, not once per row."""

    calls = 0

    def property_of_stream(self, stream: str) -> PropertyRef | None:
        self.calls += 1
        return super().property_of_stream(stream)


def _expected_rejections(registry: Registry, streams: list[str], columns: list[str | None],
                         quality: list[int]) -> list[tuple[int, str]]:
    """A slow row-by-row oracle for check_batch."""
    names = {"double": "a DOUBLE", "integer": "an INTEGER", "string": "a STRING", "boolean": "a BOOLEAN"}
    out = []
    for i, (stream, column, q) in enumerate(zip(streams, columns, quality, strict=True)):
        ref = registry.property_of_stream(stream)
        if ref is None:
            continue
        what = f"the property {ref.property_name} of asset {ref.asset_name}"
        if ref.kind != "measurement":
            out.append((i, f"{stream}: {what} is an {ref.kind}; SiteWise ingests values into measurements only"))
        elif column is None:
            if q == Quality.GOOD:
                out.append((i, f"{stream}: a null value needs BAD or UNCERTAIN quality"))
        elif column.upper() != ref.data_type:
            out.append((i, f"{stream}: {what} has data type {ref.data_type}; the value is {names[column]}"))
    return out


def test_check_batch_splits_mixed_types_exactly(registry: Registry) -> None:
    press1 = asset_named(registry, "Press1")
    maker = next(p for p in press1.properties if p.name == "Manufacturer")
    streams_pool = [plant.alias("Press1", "Speed"), plant.alias("Press2", "State"), plant.alias("Oven1", "Status"),
                    plant.alias("Oven1", "Running"), "/elsewhere/unmapped", f"asset:{press1.id}/{maker.id}"]
    rng = np.random.default_rng(7)
    n = 5000
    stream_idx = rng.integers(0, len(streams_pool), n)
    kind = rng.integers(0, 5, n)  # 0 double, 1 integer, 2 string, 3 boolean, 4 null
    quality = rng.integers(0, 3, n).astype(np.int8)
    streams = [streams_pool[i] for i in stream_idx]
    columns: list[str | None] = [("double", "integer", "string", "boolean", None)[k] for k in kind]
    batch = from_columns(
        streams, np.arange(n, dtype=np.int64) * 1_000_000,
        double=[float(i) if k == 0 else None for i, k in enumerate(kind)],
        integer=[i if k == 1 else None for i, k in enumerate(kind)],
        string=[f"s{i}" if k == 2 else None for i, k in enumerate(kind)],
        boolean=[bool(i % 2) if k == 3 else None for i, k in enumerate(kind)],
        quality=quality,
    )
    counting = CountingRegistry(registry.catalog, LOADED_AT)
    accepted, rejected, reasons = check_batch(batch, counting)

    expected = _expected_rejections(registry, streams, columns, quality.tolist())
    assert counting.calls == len(batch.column("stream").dictionary)
    assert reasons == [r for _, r in expected]
    rejected_rows = [i for i, _ in expected]
    times = batch.column("time").cast(pa.int64()).to_pylist()
    assert rejected.column("time").cast(pa.int64()).to_pylist() == [times[i] for i in rejected_rows]
    kept = sorted(set(range(n)) - set(rejected_rows))
    assert accepted.column("time").cast(pa.int64()).to_pylist() == [times[i] for i in kept]
    assert accepted.schema == SCHEMA and rejected.schema == SCHEMA
    assert 0 < rejected.num_rows < n
    # The reasons read as promised, and the unmapped stream went through untouched.
    assert "/plant1/line1/press1/speed: the property Speed of asset Press1 has data type DOUBLE; the value is an " \
           "INTEGER" in reasons
    unmapped = [i for i, s in enumerate(streams) if s == "/elsewhere/unmapped"]
    assert set(unmapped) <= set(kept)


def test_check_batch_accepts_unknown_streams_and_nulls_unchanged(registry: Registry) -> None:
    batch = from_columns(["/not/modelled", plant.alias("Press1", "Speed"), plant.alias("Press1", "State")],
                         [1, 2, 3], integer=[1, None, None], quality=[0, int(Quality.BAD), int(Quality.UNCERTAIN)])
    accepted, rejected, reasons = check_batch(batch, registry)
    assert accepted is batch and rejected.num_rows == 0 and reasons == []
    empty = batch.slice(0, 0)
    assert check_batch(empty, registry)[0].num_rows == 0


def test_check_batch_on_empty_registry_passes_everything() -> None:
    batch = from_columns(["/a", "/b"], [1, 2], double=[1.0, 2.0])
    accepted, rejected, reasons = check_batch(batch, Registry.empty())
    assert accepted is batch and rejected.num_rows == 0 and reasons == []


# --- resolve_stream -------------------------------------------------------------------------------


def test_resolve_stream(rich: Registry) -> None:
    asset = rich.asset("externalId:press-1")
    ids = {p.name: p.id for p in asset.properties}
    assert resolve_stream(rich, None, None, "/p1/speed") == "/p1/speed"
    assert resolve_stream(rich, "", "", "/unknown/stream") == "/unknown/stream"  # disassociated stream
    assert resolve_stream(rich, asset.id, ids["Speed"], None) == "/p1/speed"
    assert resolve_stream(rich, asset.id, ids["Speed"], "/p1/speed") == "/p1/speed"
    assert resolve_stream(rich, "externalId:press-1", ids["State"], None) == f"asset:{asset.id}/{ids['State']}"


@pytest.mark.parametrize(("asset", "prop", "alias", "code", "message"), [
    (None, None, None, "InvalidRequestException", "Either propertyAlias or both assetId and propertyId"),
    ("ASSET", None, None, "InvalidRequestException", "assetId and propertyId must be given together"),
    (None, "SPEED", "/p1/speed", "InvalidRequestException", "assetId and propertyId must be given together"),
    ("ASSET", "SPEED", "/p1/state", "InvalidRequestException", "The propertyAlias /p1/state does not match"),
    ("ASSET", "STATE", "/p1/speed", "InvalidRequestException", "The propertyAlias /p1/speed does not match"),
    (None, None, "/p1/\x07", "InvalidRequestException", "Invalid propertyAlias: alias '/p1/\\x07' contains"),
    ("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "SPEED", None, "ResourceNotFoundException", "Asset 0f1e2d3c"),
    ("ASSET", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", None, "ResourceNotFoundException", "Asset property 0f1e2d3c"),
], ids=["nothing", "asset-only", "property-and-alias", "alias-of-another-property", "alias-on-unaliased",
        "control-char", "unknown-asset", "unknown-property"])
def test_resolve_stream_errors(rich: Registry, asset: str | None, prop: str | None, alias: str | None,
                               code: str, message: str) -> None:
    a = rich.asset("externalId:press-1")
    ids = {"SPEED": next(p.id for p in a.properties if p.name == "Speed"),
           "STATE": next(p.id for p in a.properties if p.name == "State")}
    asset = a.id if asset == "ASSET" else asset
    prop = ids.get(prop or "", prop)
    with pytest.raises(ModelError) as caught:
        resolve_stream(rich, asset, prop, alias)
    assert sitewise_error(caught.value).code == code
    assert str(caught.value).startswith(message), str(caught.value)


def test_registry_values_are_immutable(registry: Registry) -> None:
    asset = registry.assets()[0]
    with pytest.raises(AttributeError):
        asset.name = "renamed"  # type: ignore[misc]
    assert copy.copy(asset) == asset


def test_readme_bundle_example_loads() -> None:
    readme = (Path(__file__).resolve().parents[2] / "asset_models" / "README.md").read_text()
    block = readme.split("```json\n", 1)[1].split("```", 1)[0]
    registry = Registry(build_catalog([("README.md", json.loads(block))]))
    line = next(a for a in registry.assets() if a.name == "Line 1")
    assert [a.name for a in registry.children(line.id)] == ["Press1"]
    assert registry.property_by_alias("/plant1/line1/press1/temperature").property_name == "Temperature"


def test_one_mistake_gives_one_line() -> None:
    """A property with a problem stays known, so assets using it do not add "no such property" lines."""
    model = with_props(meas("Speed", "FLOAT"), meas("State", "INTEGER"))
    with pytest.raises(ModelError) as caught:
        build_catalog([("m.json", {"assetModels": [model], "assets": [ASSET]})])
    assert str(caught.value).splitlines() == [
        "m.json: model 'Machine' property 'Speed': unknown dataType 'FLOAT'; "
        "expected STRING|INTEGER|DOUBLE|BOOLEAN|STRUCT"]
