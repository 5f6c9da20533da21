"""Charts drawn on the server as inline SVG: bars over time buckets or groups. Pure; styled by ui.css (classes,
no inline style, which the UI's Content-Security-Policy forbids)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
_LEFT, _RIGHT, _BOTTOM, _TOP = 56, 8, 28, 12
_ids = itertools.count()


def tick(value: float) -> str:
    """An axis label: 1.2k, 3.4M, 0.05."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float],
              overlay: Sequence[float] | None = None, overlay_name: str = "") -> Markup:
    """Bars of `values` (one per label), with `overlay` (a part of each: errors of requests) drawn over them.

    An image with a title and a description that says what it shows in words, for screen readers."""
    n = len(values)
    chart_id = f"chart{next(_ids)}"
    top = max([*values, *(overlay or ()), 0.0])
    scale = (HEIGHT - _BOTTOM - _TOP) / top if top > 0 else 0.0
    slot = (WIDTH - _LEFT - _RIGHT) / max(n, 1)
    bar = max(slot * 0.8, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">',
             f'<title id="{chart_id}-t">{escape(title)}</title>',
             f'<desc id="{chart_id}-d">{escape(describe(labels, values, overlay, overlay_name))}</desc>']
    base = HEIGHT - _BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        y = base - fraction * (base - _TOP)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(tick(top * fraction))}</text>')
    for i, value in enumerate(values):
        x = _LEFT + i * slot + (slot - bar) / 2
        parts.append(_bar("bar", x, bar, value * scale, base, f"{labels[i]}: {tick(value)}"))
        if overlay is not None and overlay[i]:
            parts.append(_bar("bar-overlay", x, bar, overlay[i] * scale, base,
                              f"{labels[i]}: {tick(overlay[i])} {overlay_name}"))
    for i in sorted({0, n // 2, n - 1}) if n else ():
        x = _LEFT + i * slot + slot / 2
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        x = _LEFT if anchor == "start" else WIDTH - _RIGHT if anchor == "end" else x
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                     f'{escape(labels[i])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _bar(kind: str, x: float, width: float, height: float, base: float, label: str) -> str:
    return (f'<rect class="{kind}" x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" height="{height:.1f}">'
            f'<title>{escape(label)}</title></rect>')


def describe(labels: Sequence[str], values: Sequence[float], overlay: Sequence[float] | None = None,
             overlay_name: str = "") -> str:
    """The chart in words: its total, and its highest bar."""
    if not values or not any(values):
        return "No data in this period."
    peak = max(range(len(values)), key=values.__getitem__)
    text = f"Total {tick(sum(values))} over {len(values)} bars; highest {tick(values[peak])} at {labels[peak]}."
    if overlay is not None:
        text += f" {tick(sum(overlay))} {overlay_name} in all."
    return text
