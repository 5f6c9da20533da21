"""The shutdown drain under granian (finding 11 of issue 28): once SIGTERM has come, a response still being
answered says `connection: close`, so its client does not send the next request on a connection that is about
to close; a connection idle at that moment is closed by the server before anything is sent on it."""

from __future__ import annotations

import http.client
import signal
import socket
import time

import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

HEADERS = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}


def sigterm_while_answering(gw: Gateway, busy: http.client.HTTPConnection) -> None:
    """Send a request the upstream answers after 1.5 s on `busy`, then SIGTERM the gateway while it waits."""
    busy.request("POST", "/v1/chat/completions", body=b'{"model":"m"}', headers={**HEADERS, "x-mock-delay-ms": "1500"})
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)


def test_responses_during_the_drain_close_their_connection(upstream: str) -> None:
    with start_gateway(gateway_env(upstream)) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        busy = http.client.HTTPConnection(host, int(port), timeout=10)
        idle = http.client.HTTPConnection(host, int(port), timeout=10)
        idle.request("POST", "/v1/chat/completions", body=b'{"model":"m"}', headers=HEADERS)
        before = idle.getresponse()
        before.read()
        assert before.status == 200 and before.getheader("connection") is None  # kept alive before the drain
        sigterm_while_answering(gw, busy)
        answer = busy.getresponse()
        assert answer.status == 200 and answer.read().startswith(b"{")
        assert answer.getheader("connection") == "close"
        assert idle.sock is not None
        idle.sock.settimeout(5)
        assert idle.sock.recv(1) == b""  # closed by the server, nothing half-sent on it
        busy.close()
        idle.close()
        assert gw.proc.wait(15) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_connection_opened_during_the_drain_is_refused_at_once_not_held_until_exit(upstream: str,
                                                                                     workers: str) -> None:
    """granian closes its listener when the drain starts: a new client is refused (its connection attempt fails,
    so it or its load balancer goes elsewhere) while the requests in flight finish; it is not left waiting."""
    with start_gateway(gateway_env(upstream), "--workers", workers, timeout_s=30) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        busy = http.client.HTTPConnection(host, int(port), timeout=10)
        sigterm_while_answering(gw, busy)
        time.sleep(0.3)
        started = time.monotonic()
        try:
            late = socket.create_connection((host, int(port)), timeout=5)
        except ConnectionRefusedError:
            pass
        else:  # accepted as the listener closed: closed at once, nothing answered
            late.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            assert late.recv(1) == b""
            late.close()
        assert time.monotonic() - started < 0.5
        answer = busy.getresponse()
        assert answer.status == 200 and answer.getheader("connection") == "close"
        busy.close()
        assert gw.proc.wait(20) == 0


def test_with_several_workers_responses_during_the_drain_close_their_connection(upstream: str) -> None:
    """With worker processes, granian's supervisor stops them itself (llmgate's drain hook runs only in the single
    process): a response a worker is still answering says `connection: close` all the same, granian's own
    graceful shutdown ending the connection's keep-alive."""
    with start_gateway(gateway_env(upstream), "--workers", "2", timeout_s=30) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        busy = http.client.HTTPConnection(host, int(port), timeout=10)
        sigterm_while_answering(gw, busy)
        answer = busy.getresponse()
        assert answer.status == 200 and answer.read().startswith(b"{")
        assert answer.getheader("connection") == "close"
        busy.close()
        assert gw.proc.wait(20) == 0
