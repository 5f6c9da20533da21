"""Whether the usage writer has time to spare.

The event bus sets `UNHURRIED` around its write of a batch to the sinks: true while it paces itself (the event loop
has time to spare and less than a batch waits behind this one; bus.py). A sink that can spread its work out reads
it: the SQLite rows' writer pauses between two statements only then, so that a gateway under full load never slows
its own usage log down.
"""

from __future__ import annotations

from contextvars import ContextVar

UNHURRIED: ContextVar[bool] = ContextVar("llmgate_usage_unhurried", default=False)
