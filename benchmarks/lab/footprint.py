"""Start-up footprint: what importing `llmgate.app` costs (python -X importtime) and the installed size."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any


def parse_importtime(stderr: str) -> dict[str, float]:
    """`python -X importtime` lines → {module: cumulative ms}. Lines look like
    `import time:       self [us] |  cumulative | imported package` (header) then `import time: 12 | 345 | name`."""
    cumulative: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        try:
            cum_us = int(parts[1].strip())
        except ValueError:  # the header line
            continue
        name = parts[2].strip()
        cumulative[name] = max(cumulative.get(name, 0.0), cum_us / 1000.0)
    return cumulative


def top_offenders(cumulative: dict[str, float], root: str, n: int = 12) -> list[tuple[str, float]]:
    """The `n` heaviest imports other than `root` itself and its own parents, heaviest first. A package and its
    submodule both appear (cumulative times nest): the table shows where the time goes at every level."""
    skip = {root, *(root.rsplit(".", i)[0] for i in range(1, root.count(".") + 1))}
    ranked = sorted(((m, ms) for m, ms in cumulative.items() if m not in skip), key=lambda x: -x[1])
    return ranked[:n]


def import_profile(module: str = "llmgate.app", runs: int = 3) -> tuple[float, list[tuple[str, float]]]:
    """(median total ms to import `module` in a fresh interpreter, top offenders of the median run)."""
    samples: list[tuple[float, dict[str, float]]] = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if proc.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{proc.stderr[-2000:]}")
        cumulative = parse_importtime(proc.stderr)
        samples.append((cumulative.get(module, 0.0), cumulative))
    samples.sort(key=lambda s: s[0])
    total, cumulative = samples[len(samples) // 2]
    return total, top_offenders(cumulative, module)


def tree_size_mb(path: Path) -> float:
    """Bytes of every regular file under `path` (symlinks not followed), in MB."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size
    return total / 2**20


def installed_mb() -> float:
    """Size of this environment's site-packages (what installing llmgate put there, and dev tools if any)."""
    return tree_size_mb(Path(sysconfig.get_paths()["purelib"]))


def footprint(module: str = "llmgate.app") -> dict[str, Any]:
    total, top = import_profile(module)
    return {"module": module, "import_ms": total, "top_imports": top, "installed_mb": installed_mb()}
