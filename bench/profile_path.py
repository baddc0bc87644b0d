"""Where one streamed `POST /v1/responses` spends its time: cProfile of the single-threaded path.

    python -m bench.profile_path [--requests 300] [--tokens 20] [--top 25]

The fake upstream runs in its own process (`--tokens N`, no delay); the gateway app runs in this
process (`create_app`, SQLite in a temp dir) and is driven through Flask's test client with an
unbuffered streamed response, so the profile covers everything the gateway does per request
(validation, translation, the upstream HTTP client, SSE parsing, event building, JSON encoding,
storage) but not gunicorn's HTTP handling. Prints the unprofiled time per request, then profiled
self-time grouped by area and the top functions.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench._servers import start_fake, stop_all, stop_on_sigterm

MODEL = "bench-model"
BODY = {"model": MODEL, "input": "Stream me twenty words, please.", "stream": True}
# --path: (UPSTREAM_API, what the request adds to BODY)
PATHS = {"chat": ("chat", {}), "stateful": ("responses", {}), "proxy": ("responses", {"store": False})}

# (area, substrings of the profiled function's file or name); first match wins.
AREAS = [
    ("socket waits/syscalls (upstream latency, connect, close)", ("_socket.socket", "socket.close",
                                                                  "select.", "posix.")),
    ("storage (peewee, sqlite3)", ("/storage/", "peewee", "sqlite3")),
    ("request validation (schemas, marshmallow)", ("/schemas/", "marshmallow")),
    ("gateway: events (translate/, engine, sse)", ("/gateway/translate/", "/gateway/engine", "/gateway/sse")),
    ("gateway: upstream client", ("/gateway/upstream",)),
    ("gateway: other", ("/gateway/", "/app.py")),
    ("upstream HTTP (requests, urllib3, http.client, email headers)", ("requests/", "urllib3/", "http/client",
                                                                      "email/", "urllib/request", "socket.py")),
    ("SSE parsing (sseclient)", ("sseclient",)),
    ("json encode/decode", ("json/", "_json")),
    ("copy.deepcopy (response snapshots)", ("copy.py",)),
    ("flask/werkzeug (incl. test client)", ("flask/", "werkzeug/")),
]


def area_of(func: tuple[str, int, str]) -> str | None:
    filename, _, name = func
    where = f"{filename}:{name}"
    for area, needles in AREAS:
        if any(n in where for n in needles):
            return area
    return None


def areas_of(stats: pstats.Stats) -> dict[str, float]:
    """Self time per area. Builtins and generic stdlib code (isinstance, dict.get, os.environ, abc,
    typing ...) are charged to the area of whoever called them, up to a few levels up."""
    table = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = defaultdict(float)

    def charge(func, seconds: float, depth: int) -> None:
        area = area_of(func)
        if area is not None or depth == 0:
            areas[area or "other (builtins, stdlib)"] += seconds
            return
        callers = table.get(func, (0, 0, 0, 0, {}))[4]
        weights = {caller: info[2] for caller, info in callers.items()}  # caller's share of our tottime
        total = sum(weights.values())
        if not total:
            areas["other (builtins, stdlib)"] += seconds
            return
        for caller, weight in weights.items():
            charge(caller, seconds * weight / total, depth - 1)

    for func, (_, _, tottime, _, _) in table.items():
        charge(func, tottime, 4)
    return areas


# Cumulative time of a few call sites, to read the profile by what the gateway does.
CALL_SITES = [
    ("whole view: parse+validate+translate (Engine.prepare)", "gateway/engine.py", "prepare"),
    ("open upstream stream (UpstreamClient.open_stream)", "gateway/upstream/client.py", "open_stream"),
    ("  of which requests' proxy lookup in os.environ (trust_env)", "requests/sessions.py",
     "merge_environment_settings"),
    ("  of which requests' ~/.netrc lookup (trust_env)", "requests/utils.py", "get_netrc_auth"),
    ("  of which new TCP connection to the upstream", "urllib3/connection.py", "connect"),
    ("read + parse upstream SSE (UpstreamStream.payloads)", "gateway/upstream/client.py", "payloads"),
    ("build events (ChatDecoder.feed)", "gateway/translate/from_chat.py", "feed"),
    ("response snapshots (resource.snapshot, deepcopy)", "gateway/translate/resource.py", "snapshot"),
    ("encode SSE events (sse.encode_event)", "gateway/sse.py", "encode_event"),
    ("store the response (Engine._persist)", "gateway/engine.py", "_persist"),
    ("close upstream response (UpstreamStream.close)", "gateway/upstream/client.py", "close"),
]


def call_sites(stats: pstats.Stats, requests_n: int) -> list[str]:
    lines = []
    for label, file_part, name in CALL_SITES:
        cum = sum(info[3] for (filename, _, fname), info in stats.stats.items()  # type: ignore[attr-defined]
                  if fname == name and filename.endswith(file_part))
        lines.append(f"  {cum * 1000 / requests_n:7.3f}  {label}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--path", choices=sorted(PATHS), default="chat",
                        help="chat kind (stored), responses kind stored, or its stateless proxy path")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    fake = None
    with tempfile.TemporaryDirectory(prefix="gateway-profile-") as tmp:
        try:
            fake = start_fake(Path(tmp), MODEL, tokens=args.tokens)
            from app import create_app
            from gateway.config import Settings

            upstream_api, extra = PATHS[args.path]
            body = {**BODY, **extra}
            app = create_app(Settings(llm_api_base=fake.url, upstream_api=upstream_api,
                                      skip_llm_ready_check=True, log_level="WARNING",
                                      database_url=f"sqlite:///{tmp}/profile.db"))
            client = app.test_client()

            def one() -> None:
                resp = client.post("/v1/responses", json=body, buffered=False)
                data = b"".join(resp.response)
                resp.close()
                if resp.status_code != 200 or data.count(b"event: response.output_text.delta\n") != args.tokens:
                    raise RuntimeError(f"unexpected stream (HTTP {resp.status_code}): {data[-300:]!r}")

            for _ in range(min(50, args.requests)):
                one()  # warm-up: imports, connection pool, SQLite schema
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                one()
            wall = (time.perf_counter() - t0) * 1000 / args.requests
            cpu = (time.process_time() - c0) * 1000 / args.requests
            print(f"unprofiled, {args.requests} sequential requests: {wall:.2f} ms wall, {cpu:.2f} ms CPU "
                  f"(this process: gateway + test client) per request\n")

            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                one()
            profile.disable()
        finally:
            stop_all(fake)

    stats = pstats.Stats(profile)
    areas = areas_of(stats)
    total = sum(areas.values())
    print(f"profiled: {total * 1000 / args.requests:.2f} ms per request (the profiler inflates Python-heavy "
          f"code 2-3x; compare shares, not absolute numbers)\n\nself time by area, ms per request:")
    for area, seconds in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds * 1000 / args.requests:7.3f}  {100 * seconds / total:5.1f}%  {area}")
    print("\ncumulative time of call sites, ms per request:")
    print("\n".join(call_sites(stats, args.requests)))
    print()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
