"""`llmgate serve`: run the gateway under granian, in this process."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from llmgate import __version__
from llmgate.config import ConfigError, Settings, is_loopback, load_settings
from llmgate.log import known_secrets, mask_secret, setup_logging


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (env LLMGATE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (env LLMGATE_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (env LLMGATE_WORKERS, default 1)")
    serve.add_argument("--single-process", action=argparse.BooleanOptionalAction, default=None,
                       help="serve in this process, without granian's supervisor (~35 MB less; a crash is not "
                            "respawned): the default for one worker; --no-single-process keeps the supervisor "
                            "(env LLMGATE_SINGLE_PROCESS=1/0)")
    serve.add_argument("--config", help="TOML config file (env LLMGATE_CONFIG)")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Check the settings, then hand over to granian (which returns on SIGINT/SIGTERM)."""
    # Flags become environment variables: granian's worker processes build the app from the environment.
    for flag, var in (("host", "LLMGATE_HOST"), ("port", "LLMGATE_PORT"), ("workers", "LLMGATE_WORKERS"),
                      ("config", "LLMGATE_CONFIG"), ("single_process", "LLMGATE_SINGLE_PROCESS")):
        value = getattr(args, flag)
        if value is not None:
            os.environ[var] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"llmgate: {exc.report()}", file=sys.stderr)
        return 2
    setup_logging(settings.server.log_level, settings.server.log_json, known_secrets(settings))
    problem = check_exposure(settings)
    if problem:
        print(f"llmgate: refusing to start: {problem}", file=sys.stderr)
        return 2
    _log_start(settings)
    short = raise_open_files_limit(open_files_wanted(settings.server.max_connections))
    if short is not None:
        from loguru import logger

        logger.warning(short)
    from llmgate.observe.multiproc import metrics_dir

    if serves_in_process(settings):
        _run_embedded(settings)
        return 0
    with metrics_dir(settings.server.workers):  # several workers share their metrics through it
        _run_granian(settings)
    return 0


def serves_in_process(settings: Settings) -> bool:
    """One process (granian's embedded server) unless asked otherwise or serving several workers."""
    single = settings.server.single_process
    return single if single is not None else settings.server.workers == 1


def _run_embedded(settings: Settings) -> None:
    """The app served by granian's embedded server on this process's own uvloop loop, until SIGINT/SIGTERM
    (the app's lifespan then drains the usage queue, as in a worker process)."""
    import asyncio

    import uvloop
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server as EmbeddedServer

    from llmgate.app import create_app

    async def serve() -> None:
        # granian's only warning here would be "Embedded server is experimental!", at every start: llmgate's own
        # start-up line says how it serves, and README/.env.example say what granian calls the mode.
        server = EmbeddedServer(create_app, factory=True, address=settings.server.host, port=settings.server.port,
                                interface=Interfaces.ASGI, log_level=LogLevels.error, log_access=False,
                                backlog=settings.server.backlog, backpressure=settings.server.max_connections)
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):  # the embedded server installs no handlers of its own
            loop.add_signal_handler(stop, server.stop)
        await server.serve()

    uvloop.run(serve())


def open_files_wanted(max_connections: int) -> tuple[int, int]:
    """File descriptors a worker may use, and those it cannot do without: at most an upstream connection for each
    client connection (idle keep-alive ones have none), plus a margin for the store, logs and the interpreter."""
    return 2 * max_connections + 256, max_connections + 256


def raise_open_files_limit(wanted: tuple[int, int]) -> str | None:
    """Raise the soft open-files limit to `wanted[0]` (never past the hard limit; worker processes inherit it).
    Returns a warning when the hard limit is below `wanted[1]`: past it, accepting a connection fails."""
    import resource

    best, needed = wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = best if hard == resource.RLIM_INFINITY else min(best, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != resource.RLIM_INFINITY and hard < needed:
        return (f"the open-files limit is {hard}, below the {needed} that LLMGATE_MAX_CONNECTIONS needs: raise it "
                "(ulimit -n, LimitNOFILE= in systemd, --ulimit nofile= for containers) or lower "
                "LLMGATE_MAX_CONNECTIONS")
    return None


def check_exposure(settings: Settings) -> str | None:
    """Why the gateway must not start as configured, or None: no master key is fine on loopback only."""
    host = settings.server.host
    if settings.master_key or is_loopback(host):
        return None
    return (f"LLMGATE_MASTER_KEY is not set and the gateway would listen on {host}, reachable from other "
            "machines, letting anyone spend the provider keys. Set LLMGATE_MASTER_KEY, or bind to 127.0.0.1.")


def _log_start(settings: Settings) -> None:
    from loguru import logger

    server = settings.server
    if not settings.master_key:
        logger.warning("!!! LLMGATE_MASTER_KEY is not set: /v1 is OPEN to every local process on "
                       "{}:{}. Set LLMGATE_MASTER_KEY before exposing this gateway. !!!", server.host, server.port)
    for provider in settings.providers:
        logger.info("provider {} → {} (key {}, models: {})", provider.name, provider.base_url,
                    mask_secret(provider.api_key), ", ".join(provider.models) or "any")
    store = without_password(settings.database_url) if settings.database_url else f"SQLite {server.data_dir}/llmgate.db"
    logger.info("store: {}; shared limits and revocations: {}", store,
                without_password(settings.redis_url) if settings.redis_url else "off (no LLMGATE_REDIS_URL)")
    logger.info("management API /manage: {}", "on" if settings.management_token else
                "off (set LLMGATE_MANAGEMENT_TOKEN to enable it)")
    how = "in this process (no supervisor: LLMGATE_SINGLE_PROCESS=0 for granian's)" if serves_in_process(settings) \
        else f"with {server.workers} worker(s) under granian's supervisor"
    logger.info("llmgate {} listening on http://{}:{} {}", __version__, server.host, server.port, how)


def without_password(url: str) -> str:
    """`postgresql://user:secret@host/db` → `postgresql://user:****@host/db`, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:****@{host}"


def _run_granian(settings: Settings) -> None:
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    class _Server(Server):  # type: ignore[misc,valid-type]
        """granian answers SIGHUP by respawning workers (a bad config would then take the gateway down); llmgate
        passes it to the workers, which reload their config in place and keep serving."""

        def signal_handler_reload(self, *args: object, **kwargs: object) -> None:
            for worker in self.wrks:
                pid = getattr(getattr(worker, "inner", None), "pid", None)
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)

    server = settings.server
    _Server(
        "llmgate.app:create_app",
        factory=True,
        address=server.host,
        port=server.port,
        workers=server.workers,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
        log_access=False,
        respawn_failed_workers=True,
        backlog=server.backlog,
        backpressure=server.max_connections,  # per worker
    ).serve()
