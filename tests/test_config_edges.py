"""Configuration edge cases through the CLI (issue 9, item 8): a clear message naming the file and the key,
exit status 2, never a traceback, from ``validate`` and from ``run`` alike."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitewise_edge.config import parse_config

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sitewise_edge", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**os.environ, **(env or {})})


def deep_model(depth: int) -> str:
    return '[{"assetModelName": "Deep", "assetModelProperties": ' + "[" * depth + "]" * depth + "}]"


CASES = {
    # id: (file name, file bytes, (what stderr must say, ...))
    "not-utf8": ("gateway.yaml", "gateway:\n  name: Presse Nr. 3 — Halle Süd\n".encode("cp1252"),
                 ("gateway.yaml: 1 error(s)", "line 2, column 22: not UTF-8 text: byte 0x97")),
    "duplicate-section": ("gateway.yaml", b"api:\n  port: 8080\nstorage:\n  retention: 1d\napi:\n  port: 9090\n",
                          ("line 5, column 1: the key 'api' is written twice in one mapping (first at line 1)",)),
    "duplicate-nested-key": ("gateway.yaml", b"api:\n  port: 8080\n  host: 127.0.0.1\n  port: 9090\n",
                             ("line 4, column 3: the key 'port' is written twice in one mapping (first at line 2)",)),
    "port-true": ("gateway.yaml", b"api:\n  port: true\n", ("api.port: Input should be a valid integer", "'true'")),
    "float-true": ("gateway.yaml", b"publishers:\n  - {name: c, type: sitewise, rate_limit_values: yes}\n",
                   ("publishers[0].rate_limit_values: Input should be a valid number",)),
    "deep-yaml": ("gateway.yaml", b"gateway: " + b"[" * 5000 + b"]" * 5000 + b"\n", ("nested too deeply",)),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_is_a_clear_error(tmp_path: Path, case: str, command: str) -> None:
    name, content, expected = CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    out = cli(command, "-c", str(path))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert str(path) in out.stderr
    for text in expected:
        assert text in out.stderr, out.stderr


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("document", "expected"), [
    (deep_model(5000), "not a SiteWise document: nested deeper than 64 levels"),
    (deep_model(100), "not a SiteWise document: nested deeper than 64 levels"),
    ('[{"assetModelName": "A", "assetModelName": "B"}]',
     "not a SiteWise document: the key 'assetModelName' is written twice in one object"),
], ids=["past-the-parser", "past-the-limit", "duplicate-key"])
def test_a_bad_model_file_is_a_clear_error(tmp_path: Path, command: str, document: str, expected: str) -> None:
    model = tmp_path / "models.json"
    model.write_text(document)
    config = tmp_path / "gateway.yaml"
    config.write_text(f"gateway: {{data_dir: {tmp_path / 'data'}}}\napi: {{port: 0}}\nmodels: [{{path: {model}}}]\n")
    out = cli(command, "-c", str(config))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert f"{model}: {expected}" in out.stderr


def test_a_default_applies_when_the_variable_is_set_but_empty(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("api:\n  port: '${API_PORT:-8123}'\n  token: '${API_TOKEN}'\n")
    out = cli("validate", "-c", str(path), env={"API_PORT": "", "API_TOKEN": ""})
    assert out.returncode == 0, out.stderr  # before: api.port: '' is not an integer
    config = parse_config({"api": {"port": "${API_PORT:-8123}", "token": "${API_TOKEN}"}},
                          env={"API_PORT": "", "API_TOKEN": ""})
    assert config.api.port == 8123
    assert config.api.token == ""  # ${VAR} without a default stays what the variable holds, as in the shell
    assert parse_config({"api": {"port": "${API_PORT:-8123}"}}, env={"API_PORT": "9000"}).api.port == 9000
