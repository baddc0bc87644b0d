"""`responses-gateway`: the operator's command, installed with the package.

- `serve`: the gateway under gunicorn, as `make run` runs it; settings come from the environment
  (README, Configuration), a few also from options.
- `doctor`: checks the upstream (health, models, context length, forced tool calls plain and in
  Codex's namespace shape, reasoning), the database and the keys; says how to fix what is wrong, and
  prints a Codex `config.toml` for this deployment (gateway/doctor.py).
- `sessions list|show ID`: a tenant's stored chains and conversations, and one chain turn by turn.
- `purge --older-than DAYS`: what the retention pass does, now and to the end, with progress.

Every command reads the same settings as the gateway, and a bad one is one line and exit code 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

from gateway import NAME, __version__

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn_conf.py")


def serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn running the gateway (signals then reach gunicorn itself)."""
    for option, variable in (("host", "GATEWAY_HOST"), ("port", "GATEWAY_PORT"), ("workers", "GATEWAY_WORKERS")):
        value = getattr(args, option)
        if value is not None:
            os.environ[variable] = str(value)
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", CONF, "app:create_app()"])
    return 0    # not reached


def open_storage():
    """The settings, and storage bound and migrated, for commands that work on the database."""
    from gateway.startup import check_database, load_settings
    from storage.db import connect_database, db
    from storage.migrations import migrate

    settings, _ = load_settings()
    check_database(settings)
    db.initialize(connect_database(settings.database_url))
    migrate()
    return settings


def purge(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from storage.retention import purge_older_than

    open_storage()
    cutoff = int(time.time() - args.older_than * 86400)
    started = time.monotonic()

    def progress(purged) -> None:
        out(f"  … {purged.responses} responses, {purged.conversations} conversations purged "
            f"({time.monotonic() - started:.1f}s)")

    out(f"Purging responses and conversations older than {args.older_than:g} days:")
    purged = purge_older_than(cutoff, budget_s=float("inf"), progress=progress)
    out(f"Done: {purged.responses} responses and {purged.conversations} conversations purged "
        f"in {time.monotonic() - started:.1f}s.")
    return 0


def doctor(args: argparse.Namespace) -> int:
    from gateway.doctor import Doctor
    from gateway.startup import load_settings

    settings, keyring = load_settings()
    return Doctor(settings, keyring).run()


def sessions(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    from gateway import sessions_text
    from storage.repository import Repository

    open_storage()
    records = Repository(args.tenant)
    if args.action == "list":
        since = int(time.time() - args.days * 86400) if args.days else None
        found = records.list_sessions(limit=args.limit, status=args.status, model=args.model, since=since)
        for line in sessions_text.session_lines(found):
            out(line)
        return 0
    if args.id.startswith("conv_"):
        items = records.conversation_items(args.id)
        if items is None:
            out(f"no conversation {args.id} for tenant {args.tenant!r}")
            return 1
        for item in items:
            for line in sessions_text.item_lines(item):
                out(line)
        return 0
    turns = records.chain_turns(args.id, limit=args.limit)
    if turns is None:
        out(f"no response {args.id} for tenant {args.tenant!r}")
        return 1
    for line in sessions_text.turn_lines(turns):
        out(line)
    return 0


def days(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more days, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog=NAME, description="The Responses API gateway for self-hosted models.")
    root.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="run the gateway under gunicorn (settings from the environment)")
    run.add_argument("--host", help="address to listen on (GATEWAY_HOST)")
    run.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT)")
    run.add_argument("--workers", type=int, help="worker processes (GATEWAY_WORKERS)")
    run.set_defaults(handler=serve)

    check = commands.add_parser("doctor", help="check the upstream, database and keys; print a Codex config.toml")
    check.set_defaults(handler=doctor)

    stored = commands.add_parser("sessions", help="list a tenant's chains and conversations, or show one")
    stored.add_argument("action", choices=("list", "show"))
    stored.add_argument("id", nargs="?", help="for show: a response id (its chain) or a conversation id")
    stored.add_argument("--tenant", default="default", help="the tenant (a name from the keys file, or key-…)")
    stored.add_argument("--limit", type=int, default=50, help="sessions listed, or last turns shown")
    stored.add_argument("--status", help="list: only chains whose newest response has this status")
    stored.add_argument("--model", help="list: only chains of this model")
    stored.add_argument("--days", type=days, help="list: only sessions of the last N days")
    stored.set_defaults(handler=sessions)

    retention = commands.add_parser("purge", help="purge stored responses and conversations older than N days")
    retention.add_argument("--older-than", type=days, required=True, metavar="DAYS",
                           help="age in days (what RESPONSE_TTL_DAYS does on a schedule)")
    retention.set_defaults(handler=purge)
    return root


def main(argv: list[str] | None = None) -> int:
    root = parser()
    args = root.parse_args(argv)
    if args.command == "sessions" and args.action == "show" and not args.id:
        root.error("sessions show needs an ID")
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
