"""Whether the usage writer has time to spare.

The event bus sets `UNHURRIED` around its write of a batch to the sinks: true while less than a batch waits behind
it. A sink that can spread its work out reads it: the SQLite rows' writer pauses between two statements only then,
so that a gateway under full load (its writer behind) never slows its own usage log down.
"""

from __future__ import annotations

from contextvars import ContextVar

UNHURRIED: ContextVar[bool] = ContextVar("llmgate_usage_unhurried", default=False)
