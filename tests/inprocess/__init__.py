"""llmgate in process: no sockets, no subprocesses, routing's clock set by hand.

    upstream.py   FakeUpstream: UpstreamClient's interface, each request answered by a handler (a scripted Reply,
                  an error, a hang; or the upstream double's ASGI app), each recorded (Sent)
    gateway.py    Gateway: Services opened on the test's loop with FakeUpstreams, the app driven through ASGI
                  (Response: status, headers, the body messages as sent), FakeClock
"""
