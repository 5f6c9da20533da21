"""Logging set-up (loguru), secret masking and request ids."""

from __future__ import annotations

import logging
import os
import sys

from loguru import logger

# Libraries that would otherwise log a line per request (httpx at INFO) or chatter at start-up.
_QUIET_LOGGERS = ("httpx", "httpcore", "asyncio", "litestar", "granian.access")


def setup_logging(level: str = "INFO") -> None:
    """Send llmgate's logs to stderr at `level` and keep third-party per-request logging off."""
    logger.remove()
    logger.add(
        sys.stderr,
        level=level.upper(),
        format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<cyan>{extra[request_id]}</cyan> {message}",
        colorize=sys.stderr.isatty(),
        backtrace=False,
        diagnose=False,  # diagnose would print local variables, which may hold secrets
    )
    logger.configure(extra={"request_id": "-"})
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def mask_secret(secret: str | None) -> str:
    """`sk-proj-abcdef…wxyz` → `sk-****wxyz`: enough to tell keys apart, never enough to use one."""
    if not secret:
        return "<none>"
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:8] else ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}****{tail}"


def new_request_id() -> str:
    """A fresh request id: 24 hex characters (96 random bits)."""
    return os.urandom(12).hex()
