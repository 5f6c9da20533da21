"""ui/charts.py: bar charts as SVG with a title and a description in words."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from llmgate.ui.charts import bar_chart, describe, tick

SVG = "{http://www.w3.org/2000/svg}"


def test_a_chart_is_an_image_with_one_bar_a_value_and_its_overlay() -> None:
    svg = bar_chart("Requests <today>", ["00:00", "01:00", "02:00"], [4.0, 0.0, 10.0], [1.0, 0.0, 0.0], "errors")
    root = ET.fromstring(str(svg).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Requests <today>"  # escaped in the markup, read back as text
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    overlays = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar-overlay"]
    assert len(bars) == 3 and len(overlays) == 1
    heights = [float(r.get("height")) for r in bars]
    assert heights[2] > heights[0] > heights[1] == 0
    assert "style=" not in str(svg)  # the UI's CSP allows no inline style


def test_the_description_says_what_the_chart_shows() -> None:
    assert describe(["a", "b"], [0.0, 0.0]) == "No data in this period."
    assert describe(["a", "b"], [1.0, 3.0], [0.0, 1.0], "errors") == (
        "Total 4 over 2 bars; highest 3 at b. 1 errors in all.")
    assert (tick(0), tick(1500), tick(2_500_000), tick(0.05)) == ("0", "1.5k", "2.5M", "0.05")
