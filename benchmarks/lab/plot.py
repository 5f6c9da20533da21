"""`--plot FILE.png`: latency CDFs of every target, one panel per case (matplotlib, the dev dependency group)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def plot_cdfs(doc: dict[str, Any], path: Path) -> None:
    """One panel per case, one line per target: latency (ms, log scale) against the fraction of requests."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib (the dev dependency group: uv sync)") from exc
    cases = [(case, rows) for case, rows in doc["cases"].items() if any(r["cdf_ms"] for r in rows.values())]
    if not cases:
        raise RuntimeError("no latency distribution to plot")
    cols = min(2, len(cases))
    nrows = math.ceil(len(cases) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 4.2 * nrows), squeeze=False)
    for ax, (case, rows) in zip(axes.flat, cases, strict=False):
        for name, row in rows.items():
            if row["cdf_ms"]:
                pct, ms = zip(*row["cdf_ms"], strict=True)
                ax.plot(ms, [p / 100 for p in pct], marker=".", label=name)
        ax.set_xscale("log")
        ax.set_title(case)
        ax.set_xlabel("latency, ms (log)")
        ax.set_ylabel("fraction of requests")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(cases):]:
        ax.set_visible(False)
    machine = doc.get("machine", {})
    fig.suptitle(f"llmgate vs direct: {machine.get('cpu_model', '')}, {machine.get('usable_cores', '?')} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
