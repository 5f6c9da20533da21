"""The metrics directory `llmgate serve` sets up for several workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmgate.observe.multiproc import ENV, metrics_dir


def test_several_workers_get_a_fresh_dir_removed_on_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with metrics_dir(2) as path:
        assert path is not None and os.environ[ENV] == path
        assert Path(path).is_dir() and not any(Path(path).iterdir())
        (Path(path) / "counter_123.db").write_bytes(b"x")  # what a worker leaves
    assert not Path(path).exists() and ENV not in os.environ


def test_the_dir_is_removed_when_serving_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RuntimeError), metrics_dir(3) as path:
        raise RuntimeError("granian failed")
    assert path is not None and not Path(path).exists() and ENV not in os.environ


def test_one_worker_keeps_its_metrics_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with metrics_dir(1) as path:
        assert path is None and ENV not in os.environ


def test_an_operators_dir_is_used_and_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    with metrics_dir(4) as path:
        assert path == str(tmp_path)
    assert tmp_path.is_dir() and os.environ[ENV] == str(tmp_path)
