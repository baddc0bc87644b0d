"""Start-up checks and messages for the gunicorn master (gunicorn.conf.py).

A bad setting stops start-up with one line naming it and exit code 2, never a traceback. The
upstream is not waited for before listening: the gateway listens at once (`/health` 200, `/ready`
503 with a reason) while a watcher reports the wait's progress and then one summary line.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import NoReturn
from urllib.parse import urlparse, urlunparse

from gateway import tenants
from gateway.config import Settings, SettingsError
from gateway.tenants import OPEN_WARNING, KeyRing

EXIT_BAD_SETTING = 2
log = logging.getLogger("gateway.startup")


def refuse(message: str) -> NoReturn:
    """One line on stderr and exit code 2."""
    print(f"gateway: cannot start: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_SETTING)


def load_settings() -> tuple[Settings, KeyRing]:
    """Settings and API keys for the master, at start and again on SIGHUP (gunicorn re-reads its
    config then). On SIGHUP a keys file that no longer parses is reported and the keys read before
    are kept: the gateway goes on serving rather than stopping on a typo."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        refuse(str(exc))
    previous = tenants.adopted(settings)
    try:
        keyring = KeyRing.from_settings(settings)
    except SettingsError as exc:
        if previous is None:
            refuse(str(exc))
        log.error("%s; keeping the API keys read before", exc)
        keyring = previous
    tenants.adopt(settings, keyring)
    return settings, keyring


def shown_url(url: str) -> str:
    """A database URL without its password, for logs."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return urlunparse(parsed._replace(netloc=netloc))
    return url


def check_database(settings: Settings) -> None:
    """Open DATABASE_URL once (bounded in time) so a wrong one stops start-up with one line instead of
    failing every worker's boot."""
    from storage.db import StorageConfigError, probe_database

    try:
        probe_database(settings.database_url, timeout_s=5)
    except StorageConfigError as exc:
        refuse(f"DATABASE_URL: {exc}")
    except Exception as exc:  # the driver's own error types differ per backend
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        refuse(f"DATABASE_URL {shown_url(settings.database_url)} cannot be used: {reason}")


def summary(settings: Settings, keyring: KeyRing, workers: int, threads: int, upstream: str) -> str:
    return (f"gateway ready: upstream {settings.llm_api_base} ({settings.upstream_api} API, {upstream}), "
            f"database {shown_url(settings.database_url)}, tenants {keyring.describe()}, "
            f"{workers} workers x {threads} threads")


class ReadinessWatch(threading.Thread):
    """Reports, from the master, how the wait for the upstream goes, then the summary line."""

    def __init__(self, settings: Settings, keyring: KeyRing, workers: int, threads: int,
                 interval_s: float = 5.0) -> None:
        super().__init__(name="readiness-watch", daemon=True)
        self.settings, self.keyring = settings, keyring
        self.workers, self.threads, self.interval_s = workers, threads, interval_s

    def run(self) -> None:
        if self.keyring.open:
            log.warning(OPEN_WARNING)
        if self.settings.skip_llm_ready_check:
            log.info(summary(self.settings, self.keyring, self.workers, self.threads, "not checked"))
            return
        from gateway.upstream.client import UpstreamClient

        client = UpstreamClient(self.settings)
        started = time.monotonic()
        deadline = started + self.settings.llm_ready_timeout_s
        while not client.is_healthy(max_age_s=0):
            if time.monotonic() >= deadline:
                log.error("upstream %s/health did not answer within LLM_READY_TIMEOUT_S=%gs; serving anyway, "
                          "/ready answers 503 until it does", client.root, self.settings.llm_ready_timeout_s)
                return
            log.info("waiting for upstream %s/health (%.0fs so far; /ready answers 503 meanwhile)",
                     client.root, time.monotonic() - started)
            time.sleep(self.interval_s)
        log.info(summary(self.settings, self.keyring, self.workers, self.threads, "healthy"))
