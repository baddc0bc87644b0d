"""Per-turn gateway overhead at chain depth 1, 100 and 1,000, on SQLite and PostgreSQL, with each
upstream kind.

    python -m bench.chain_bench [--depth 1000] [--turns 100] [--backends sqlite,postgres]
                                [--upstream-apis chat,responses] [--write]

The gateway runs under gunicorn with the shipped config; the fake upstream runs in this process
and records how long it spent on each request (body read → last byte written). A chain is built
through the gateway to the deepest depth; then, at each measured depth, `--turns` requests
continue from the response at that depth (branching, so the depth stays fixed). Overhead per turn
= the client's wall time − the upstream's own time: validation, hydrating the chain, translating,
sending the (growing) history, parsing the reply and storing the turn. Target: overhead at depth
1,000 ≤ 1.5 × overhead at depth 1. Bounded: every request has a timeout and the whole run a cap.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from bench._servers import start_gateway, stop_all, stop_on_sigterm
from tests.fakes.upstream import MODEL_PATHS, FakeUpstream

MODEL = "bench-model"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def turn(session: requests.Session, url: str, fake: FakeUpstream, previous: str | None, text: str) -> tuple[str, float]:
    """One stored JSON turn; returns (response id, gateway overhead in seconds)."""
    before = len(fake.requests)
    started = time.perf_counter()
    resp = session.post(f"{url}/v1/responses", timeout=60,
                        json={"model": MODEL, "input": text, "previous_response_id": previous})
    wall = time.perf_counter() - started
    resp.raise_for_status()
    upstream = sum(r.get("elapsed_s", 0.0) for r in fake.requests[before:] if r["path"] in MODEL_PATHS)
    return resp.json()["id"], wall - upstream


def pg_schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    import psycopg2
    with psycopg2.connect(base) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options=-csearch_path%3D{schema}", schema


def drop_pg_schema(base: str, schema: str) -> None:
    import psycopg2
    with psycopg2.connect(base) as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def run_backend(name: str, database_url: str, depths: list[int], turns: int, deadline: float,
                kind: str) -> dict[int, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix=f"chain-bench-{name}-{kind}-"))
    fake = FakeUpstream(models=(MODEL,)).start()
    gateway = None
    try:
        gateway = start_gateway(tmp, fake.base_url, {"SKIP_LLM_READY_CHECK": "1", "DATABASE_URL": database_url,
                                                     "LOG_LEVEL": "WARNING", "UPSTREAM_API": kind}, "/ready")
        session = requests.Session()
        session.trust_env = False
        leaves: dict[int, str] = {}
        previous = None
        for depth in range(1, max(depths) + 1):  # build the chain: one stored turn per level
            previous, _ = turn(session, gateway.url, fake, previous, f"build {depth}")
            if depth in depths:
                leaves[depth] = previous
            if time.monotonic() > deadline:
                raise TimeoutError(f"building the chain passed the time cap at depth {depth}")
        results: dict[int, list[float]] = {d: [] for d in depths}
        for index in range(turns):  # interleave depths so load changes hit all alike
            for depth in depths:
                results[depth].append(turn(session, gateway.url, fake, leaves[depth], f"probe {index}")[1])
            if time.monotonic() > deadline:
                break
            if index % 50 == 0:
                fake.reset()  # keep the fake's request log small
        return results
    finally:
        stop_all(gateway)
        fake.stop()


def report(all_results: dict[str, dict[int, list[float]]]) -> str:
    lines = ["| backend, upstream kind | depth | turns | overhead p50 (ms) | overhead p90 (ms) | p50 vs depth 1 |",
             "|---|---|---|---|---|---|"]
    for backend, results in all_results.items():
        base = statistics.median(results[min(results)]) if results[min(results)] else float("nan")
        for depth, values in results.items():
            p50 = statistics.median(values)
            lines.append(f"| {backend} | {depth:,} | {len(values)} | {p50 * 1000:.2f} | "
                         f"{percentile(values, 90) * 1000:.2f} | {p50 / base:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--upstream-apis", default="chat,responses")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--write", action="store_true", help="update the chain-depth section of docs/benchmarks.md")
    args = parser.parse_args()
    stop_on_sigterm()
    depths = sorted({1, min(100, args.depth), args.depth})
    deadline = time.monotonic() + args.max_seconds
    all_results: dict[str, dict[int, list[float]]] = {}
    for kind in args.upstream_apis.split(","):
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{tempfile.mkdtemp(prefix='chain-bench-db-')}/gateway.db"
                all_results[f"SQLite, {kind}"] = run_backend("sqlite", url, depths, args.turns, deadline, kind)
            elif backend == "postgres":
                url, schema = pg_schema_url(args.postgres_url)
                try:
                    all_results[f"PostgreSQL, {kind}"] = run_backend("postgres", url, depths, args.turns, deadline,
                                                                     kind)
                finally:
                    drop_pg_schema(args.postgres_url, schema)
    table = report(all_results)
    print(table)
    if args.write:
        write_docs(table)


def write_docs(table: str) -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    text = path.read_text()
    start, end = "<!-- chain-bench:start -->", "<!-- chain-bench:end -->"
    block = f"{start}\n{table}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
