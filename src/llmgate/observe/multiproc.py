"""The metrics directory of a multi-worker `llmgate serve`: made before granian forks the workers, removed on exit.

prometheus_client decides when it is first imported whether metric values live in memory or in
`PROMETHEUS_MULTIPROC_DIR`, so the variable is set here, in the main process, before any worker exists (and
before prometheus_client is imported: the main process never imports it). The directory must start empty:
files left by an earlier run would add its counts to this one's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_dir(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh temp dir in PROMETHEUS_MULTIPROC_DIR for the workers to share, removed
    afterwards; yields its path. One worker needs none (values stay in memory): yields None. A directory the
    operator set already is used as it is, and left in place."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    if workers <= 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="llmgate-metrics-")
    os.environ[ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(path, ignore_errors=True)
