"""`llmgate serve`: run the gateway under granian, in this process."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from llmgate import __version__
from llmgate.config import ConfigError, Settings, is_loopback, load_settings
from llmgate.log import known_secrets, mask_secret, setup_logging

if TYPE_CHECKING:
    from granian.http import HTTP1Settings


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
    address = bind_address(settings.server.host)
    if isinstance(address, BindError):
        print(f"llmgate: configuration error: {address.message}", file=sys.stderr)
        return 2
    settings = msgspec.structs.replace(settings, server=msgspec.structs.replace(settings.server, host=address))
    problem = check_exposure(settings)
    if problem:
        print(f"llmgate: refusing to start: {problem}", file=sys.stderr)
        return 2
    from llmgate.cli.data_paths import unwritable

    problem = unwritable(settings)  # here, not as a traceback from the app's lifespan under granian
    if problem:
        print(f"llmgate: {problem}", file=sys.stderr)
        return 2
    _log_start(settings)
    short = raise_open_files_limit(open_files_wanted(settings.server.max_connections))
    if short is not None:
        from loguru import logger

        logger.warning(short)
    from llmgate.memory import configure_allocator
    from llmgate.observe.multiproc import metrics_dir

    configure_allocator(os.environ)
    if serves_in_process(settings):
        _run_embedded(settings)
        return 0
    with metrics_dir(settings.server.workers):  # several workers share their metrics through it
        _run_granian(settings)
    return 0


class BindError(NamedTuple):
    message: str


def bind_address(host: str) -> str | BindError:
    """The IP address granian is to listen on for `host` (it takes addresses only): an address as it is (IPv6
    brackets removed), `localhost` as 127.0.0.1, another name resolved (IPv4 first); a `BindError` saying why not."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(bare))
    if bare.lower() == "localhost":
        return "127.0.0.1"
    try:
        found = socket.getaddrinfo(bare, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return BindError(f"server.host (LLMGATE_HOST, --host): cannot listen on {host!r}: it is not an IP "
                         f"address and the name does not resolve ({reason})")
    return str(sorted(found, key=lambda info: info[0] != socket.AF_INET)[0][4][0])


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
    from llmgate.drain import start_draining

    async def serve() -> None:
        # granian's only warning here would be "Embedded server is experimental!", at every start: llmgate's own
        # start-up line says how it serves, and docs/operations.md and .env.example say what granian calls the mode.
        server = EmbeddedServer(create_app, factory=True, address=settings.server.host, port=settings.server.port,
                                interface=Interfaces.ASGI, log_level=LogLevels.error, log_access=False,
                                backlog=settings.server.backlog, backpressure=settings.server.max_connections,
                                http1_settings=http1_settings(settings))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            start_draining()  # what is answered from now on closes its connection (llmgate/drain.py)
            server.stop()  # type: ignore[no-untyped-call]

        for signum in (signal.SIGINT, signal.SIGTERM):  # the embedded server installs no handlers of its own
            loop.add_signal_handler(signum, stop)
        await server.serve()

    uvloop.run(serve())


def http1_settings(settings: Settings) -> HTTP1Settings:
    """granian's HTTP/1 settings: its read buffer is what bounds a request's head (hyper's `max_buf_size`; bodies
    pass through it in pieces), so `max_header_bytes` is its size."""
    from granian.http import HTTP1Settings

    return HTTP1Settings(max_buffer_size=settings.server.max_header_bytes)


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
    """Why the gateway must not start as configured, or None. Bound beyond loopback, /v1 must be closed whatever
    the store holds: a master key, a management token (then only virtual tokens get in), or JWT issuers (then only
    their callers do)."""
    host = settings.server.host
    if settings.master_key or settings.management_token or settings.auth.jwt or is_loopback(host):
        return None
    return (f"neither LLMGATE_MASTER_KEY nor LLMGATE_MANAGEMENT_TOKEN is set and the gateway would listen on "
            f"{host}, reachable from other machines, letting anyone spend the provider keys. Set "
            "LLMGATE_MASTER_KEY (or LLMGATE_MANAGEMENT_TOKEN and issue virtual tokens, or [[auth.jwt]] issuers), or "
            "bind to 127.0.0.1.")


def _log_start(settings: Settings) -> None:
    from loguru import logger

    server = settings.server
    served = models_served(settings)
    for provider in settings.providers:
        logger.info("provider {} → {} (key {}, models: {})", provider.name, provider.base_url,
                    mask_secret(provider.api_key), served[provider.name])
    from llmgate.store.backend import sqlite_file

    sqlite = sqlite_file(settings.database_url, server.data_dir)
    store = f"SQLite {sqlite}" if sqlite is not None else without_password(settings.database_url or "")
    logger.info("store: {}; shared limits and revocations: {}", store,
                without_password(settings.redis_url) if settings.redis_url else "off (no LLMGATE_REDIS_URL)")
    logger.info("usage log: {}", usage_log_line(settings))
    logger.info("management API /manage: {}", "on" if settings.management_token else
                "off (set LLMGATE_MANAGEMENT_TOKEN to enable it)")
    how = "in this process (no supervisor: LLMGATE_SINGLE_PROCESS=0 for granian's)" if serves_in_process(settings) \
        else f"with {server.workers} worker(s) under granian's supervisor"
    logger.info("llmgate {} listening on http://{}:{} {}", __version__, server.host, server.port, how)


def usage_log_line(settings: Settings) -> str:
    """Whether usage is recorded, and where to."""
    server = settings.server
    if not server.usage_log:
        return "off (LLMGATE_USAGE_LOG=0): no usage is recorded"
    sinks = [name for name, on in (("the store", server.usage_store), ("JSONL " + server.usage_jsonl_path,
                                   bool(server.usage_jsonl_path)), ("HTTP " + server.usage_http_url,
                                   bool(server.usage_http_url))) if on]
    return f"on, to {', '.join(sinks) or 'no sink'} (LLMGATE_USAGE_LOG=0 turns it off)"


def models_served(settings: Settings) -> dict[str, str]:
    """Provider name → the models it serves, as the start-up log says it: those it declares, the aliases that use
    it, and "any" for the catch-all only (routing/table.py: a provider an alias uses is not one)."""
    from llmgate.routing.table import catch_all_provider

    catch_all = catch_all_provider(settings.providers, settings.models)
    aliases: dict[str, list[str]] = {}
    for model in settings.models:
        for deployment in model.deployments:
            names = aliases.setdefault(deployment.provider, [])
            if model.name not in names:
                names.append(model.name)
    served = {}
    for provider in settings.providers:
        parts = [", ".join(provider.models)] if provider.models else []
        if provider.name in aliases:
            parts.append("via aliases " + ", ".join(aliases[provider.name]))
        if provider.name == catch_all:
            parts.append("any (the catch-all: every model no alias or provider declares, as asked)")
        served[provider.name] = "; ".join(parts) or f"none (no alias uses it; {catch_all} is the catch-all)"
    return served


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
        http1_settings=http1_settings(settings),
    ).serve()
