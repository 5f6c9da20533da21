"""`GET /metrics` (routes/metrics.py), in process: behind its own bearer token when one is set."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.inprocess.gateway import Gateway

TOKEN = "metrics-token-0123456789"


def test_the_metrics_token_guards_the_scrape() -> None:
    with Gateway(env={"LLMGATE_METRICS_TOKEN": TOKEN}) as gw:
        refused = gw.get("/metrics", auth=False)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert gw.get("/metrics", headers={"authorization": "Bearer wrong"}, auth=False).status_code == 401
        scraped = gw.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}, auth=False)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        names = {family.name for family in text_string_to_metric_families(scraped.text)}
        assert any(name.startswith("llmgate_") for name in names)


def test_without_a_token_anyone_may_scrape() -> None:
    with Gateway() as gw:
        assert gw.get("/metrics", auth=False).status_code == 200
