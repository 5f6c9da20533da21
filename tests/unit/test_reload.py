"""Reload (reload.py) in process: the next configuration generation swapped in without dropping a request;
clients whose pool is unchanged kept, the others closed once their last request ends; a bad config kept out."""

from __future__ import annotations

import asyncio

from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import FakeUpstream, Reply, Sent, reply_json

OK = reply_json({"id": "chatcmpl-1", "choices": []})


def config(*providers: tuple[str, str], alias: str = "chat") -> str:
    """Providers (name, base URL) and one alias over the first of them."""
    blocks = "".join(f'[[providers]]\nname = "{name}"\nbase_url = "{url}"\napi_key = "sk-{name}-0000000000001"\n\n'
                     for name, url in providers)
    return f'{blocks}[[models]]\nname = "{alias}"\ndeployments = [{{ provider = "{providers[0][0]}" }}]\n'


def clients(gw: Gateway) -> dict[str, FakeUpstream]:
    return dict(gw.services.upstreams.clients)  # type: ignore[arg-type]


def test_a_reload_serves_the_new_config_and_keeps_unchanged_pools() -> None:
    with Gateway(config(("a", "http://a.test/v1"), ("b", "http://b.test/v1")), lambda _: OK) as gw:
        before = clients(gw)
        gw.write_config(config(("a", "http://a.test/v1"), ("c", "http://c.test/v1"), alias="renamed"))
        assert gw.reload()
        after = clients(gw)
        assert after["a"] is before["a"] and after["a"].is_open  # same URL and timeouts: the pool is kept
        assert after["c"].is_open and not before["b"].is_open  # a new provider opened, a dropped one closed
        assert gw.services.reloader.count == 1
        assert gw.post("/v1/chat/completions", json={"model": "renamed"}).headers["x-llmgate-deployment"] == "a/renamed"
        # the old alias is gone: its name goes to the provider no alias uses (the catch-all), now `c`
        assert gw.post("/v1/chat/completions", json={"model": "chat"}).headers["x-llmgate-deployment"] == "c"


def test_a_provider_whose_pool_changed_gets_a_new_client() -> None:
    with Gateway(config(("a", "http://a.test/v1")), lambda _: OK) as gw:
        old = clients(gw)["a"]
        gw.write_config(config(("a", "http://elsewhere.test/v1")))
        assert gw.reload()
        new = clients(gw)["a"]
        assert new is not old and new.is_open and not old.is_open
        gw.post("/v1/chat/completions", json={"model": "chat"})
        assert gw.sent[-1].url == "http://elsewhere.test/v1/chat/completions"


def test_a_request_in_flight_finishes_on_its_generation_and_then_its_retired_client_closes() -> None:
    asked, may_answer = asyncio.Event(), asyncio.Event()

    async def upstream(sent: Sent) -> Reply:
        if sent.provider == "a":
            asked.set()
            await may_answer.wait()
        return OK

    async def main() -> None:
        in_flight = asyncio.ensure_future(gw.send("POST", "/v1/chat/completions", json={"model": "chat"}))
        await asyncio.wait_for(asked.wait(), 5)
        gw.write_config(config(("b", "http://b.test/v1")))
        assert await gw.services.reloader.reload_or_keep()
        old = gw.sent[0]
        assert old.provider == "a" and not old.closed
        assert a_client.is_open  # the old generation still has a request on it
        may_answer.set()
        response = await in_flight
        assert response.status_code == 200 and response.headers["x-llmgate-deployment"] == "a/chat"
        for _ in range(100):  # closed once that request ended (a task of its own)
            if not a_client.is_open:
                break
            await asyncio.sleep(0.01)

    with Gateway(config(("a", "http://a.test/v1")), upstream) as gw:
        a_client = clients(gw)["a"]
        gw.run(main())
        assert not a_client.is_open
        assert gw.post("/v1/chat/completions", json={"model": "chat"}).headers["x-llmgate-deployment"] == "b/chat"


def test_a_bad_config_is_rejected_and_the_running_one_kept() -> None:
    with Gateway(config(("a", "http://a.test/v1")), lambda _: OK) as gw:
        gw.write_config('[[models]]\nname = "x"\ndeployments = [{ provider = "nobody" }]\n')
        assert gw.reload() is False
        assert "config reload rejected, keeping the running config" in gw.logs()
        assert gw.services.reloader.count == 0
        assert gw.post("/v1/chat/completions", json={"model": "chat"}).status_code == 200


def test_server_settings_wait_for_a_restart() -> None:
    with Gateway(config(("a", "http://a.test/v1")), lambda _: OK) as gw:
        gw.write_config("[server]\nmax_body_bytes = 4096\n\n" + config(("a", "http://a.test/v1")))
        assert gw.reload()
        assert "[server] settings changed; they take effect at the next restart" in gw.logs()
        assert gw.services.settings.server.max_body_bytes != 4096
        assert gw.post("/v1/chat/completions", json={"model": "chat", "messages": []}).status_code == 200


def test_routing_state_carries_over_a_reload() -> None:
    routing = '[routing]\nbreaker_failures = 1\nmax_attempts = 1\n\n'
    with Gateway(routing + config(("a", "http://a.test/v1")), lambda _: Reply(500)) as gw:
        assert gw.post("/v1/chat/completions", json={"model": "chat"}).status_code == 500
        assert gw.health("a/chat")["breaker"]["state"] == "open"
        gw.write_config(routing + config(("a", "http://a.test/v1")))
        assert gw.reload()
        assert gw.health("a/chat")["breaker"]["state"] == "open"  # a reload does not forget a failing deployment
        assert gw.post("/v1/chat/completions", json={"model": "chat"}).status_code == 503
