"""The built wheel holds what a gateway runs and nothing else, and the gateway runs from it.

The wheel is built with uv (as a release would be) and unpacked; its copy of llmgate is put first on PYTHONPATH,
ahead of the development install, with this environment's packages as its dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, gateway_env, start_gateway

REPO = Path(__file__).resolve().parents[2]
LAB = ("llmgate/bench/", "benchmarks/", "tests/")


def uv() -> list[str]:
    """uv as `uv run` names it to its children, or on PATH, or as the module of the system's Python."""
    if found := os.environ.get("UV") or shutil.which("uv"):
        return [found]
    if subprocess.run(["python3", "-m", "uv", "--version"], capture_output=True).returncode == 0:
        return ["python3", "-m", "uv"]
    pytest.skip("uv is not installed")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([*uv(), "build", "--wheel", "--out-dir", str(out), str(REPO)], capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("llmgate-*.whl")
    return path


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    where = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(where)
    yield where


def test_the_wheel_holds_the_package_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "llmgate/app.py" in names and "llmgate/cli/bench.py" in names
    # the admin UI's templates and assets, with the vendored library's licence
    assert {"llmgate/ui/templates/base.html", "llmgate/ui/static/ui.css", "llmgate/ui/static/vendor/htmx-2.0.11.min.js",
            "llmgate/ui/static/vendor/htmx-2.0.11.LICENSE"} <= set(names)
    assert all(n.startswith(("llmgate/", "llmgate-")) for n in names), [n for n in names if "llmgate" not in n]
    assert not [n for n in names if n.startswith(LAB) or "double" in n or "/lab/" in n]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra" not in text and "matplotlib" not in text


def test_every_module_of_the_wheel_imports(wheel: Path, unpacked: Path) -> None:
    modules = sorted(n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                     for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py") and not n.endswith("__main__.py"))
    code = ("import importlib, llmgate; "
            f"[importlib.import_module(m) for m in {modules!r}]; print(llmgate.__file__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(unpacked)}, cwd=unpacked)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(unpacked / "llmgate" / "__init__.py")
    assert len(modules) > 80


def test_the_gateway_runs_from_the_wheel(unpacked: Path, upstream: str) -> None:
    env = gateway_env(upstream, PYTHONPATH=str(unpacked))
    with start_gateway(env) as gw:
        answer = httpx.post(f"{gw.url}/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
