"""`make bench`: what the gateway adds to a streamed answer, for both upstream kinds, side by side.

    python -m bench.stream_bench             # print a Markdown report (stdout; progress on stderr)
    python -m bench.stream_bench --write     # ... and rewrite the Results section of docs/benchmarks.md
    python -m bench.stream_bench --no-vllm   # only the fake upstream (seconds instead of minutes)

Against the fake upstream (`tests.fakes.upstream`, its own process, answering at once) the same
20-token answer is fetched six ways: from its /v1/chat/completions directly and through a gateway
with `UPSTREAM_API=chat`; from its /v1/responses directly, through a gateway with
`UPSTREAM_API=responses` (stored: the stateful path) and through the same gateway with
`store: false` (the stateless proxy path), and through the stack's floor (bench/floor_app.py:
gunicorn + Flask + requests passing the bytes through). Each at concurrency 1 and 16, with kept-alive
clients and with a new connection per request, in rounds that alternate the six targets (a load
change on the shared machine hits all alike). Then the same against a real vLLM (tests/vllm: the tiny model
without its end-of-answer bias, so every answer runs to the same fixed `max_output_tokens`),
kept-alive, where the model's own time is in every number.

Time to first delta (TTFD) is taken when the bytes of the first event carrying text arrive. Every
gateway runs under gunicorn with the shipped gunicorn.conf.py and SQLite in a temp dir.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench._measure import MAX_ERRORS, BenchError, Phase, Target, background_cores, chat_check, chat_first, \
    responses_check, responses_first, run_level
from bench._report import DOC, report, summary, write_doc
from bench._servers import ROOT, start_fake, start_gateway, stop_all, stop_on_sigterm

MODEL = "bench-model"
PROMPT = "Stream me twenty words, please."
KINDS = ("chat", "responses")
CLIENTS = ("kept-alive", "new connection")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stream_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests-c1", type=int, default=150, help="measured requests per target at concurrency 1 (150)")
    p.add_argument("--requests-c16", type=int, default=320, help="measured requests per target at concurrency 16 (320)")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured requests per target and level (10)")
    p.add_argument("--rounds", type=int, default=4, help="rounds alternating the targets (4)")
    p.add_argument("--tokens", type=int, default=20, help="text deltas per fake answer (20)")
    p.add_argument("--workers", type=int, help="GATEWAY_WORKERS (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, help="GATEWAY_THREADS (default: gunicorn.conf.py's)")
    p.add_argument("--no-vllm", action="store_true", help="skip the real-vLLM part")
    p.add_argument("--vllm-requests-c1", type=int, default=20, help="per target, real vLLM, concurrency 1 (20)")
    p.add_argument("--vllm-requests-c16", type=int, default=48, help="per target, real vLLM, concurrency 16 (48)")
    p.add_argument("--vllm-tokens", type=int, default=32, help="max_output_tokens of every real-vLLM answer (32)")
    p.add_argument("--max-seconds", type=float, default=420.0, help="hard cap for the whole run (420)")
    p.add_argument("--write", action="store_true", help=f"rewrite the results section of {DOC.relative_to(ROOT)}")
    p.add_argument("--json", metavar="PATH", help="also write the target numbers and phase figures as JSON")
    args = p.parse_args(argv)
    if min(args.requests_c1, args.requests_c16, args.tokens, args.rounds, args.vllm_requests_c1,
           args.vllm_requests_c16, args.vllm_tokens) < 1 or args.warmup < 0 or args.max_seconds <= 0:
        p.error("request counts, token counts and --rounds must be ≥ 1, --warmup ≥ 0, --max-seconds > 0")
    return args


def targets(upstream: str, upstream_url: str, gateways: dict[str, str], model: str, client: str,
            max_tokens: int | None) -> list[Target]:
    """The six ways to fetch the same answer: direct and through the gateway per upstream kind, and
    through the floor (bytes passed through, no gateway)."""
    limit_chat = {"max_tokens": max_tokens} if max_tokens else {}
    limit = {"max_output_tokens": max_tokens} if max_tokens else {}
    chat = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "stream_options": {"include_usage": True}, **limit_chat}  # what the chat kind itself sends upstream
    responses = {"model": model, "input": PROMPT, "stream": True, **limit}
    fresh = client == "new connection"

    def target(kind: str, path: str, url: str, body: dict, first, check) -> Target:
        server = None if path == "direct" else "floor gateway" if path == "floor" else f"{kind} gateway"
        return Target(f"{upstream} {kind} {path} {client}", url, json.dumps(body).encode(), first, check,
                      gateway=server, new_connection=fresh, key=(upstream, kind, path, client))

    return [target("chat", "direct", f"{upstream_url}/v1/chat/completions", chat, chat_first, chat_check),
            target("chat", "gateway", f"{gateways['chat']}/v1/responses", responses, responses_first, responses_check),
            target("responses", "direct", f"{upstream_url}/v1/responses", {**responses, "store": False},
                   responses_first, responses_check),
            target("responses", "gateway", f"{gateways['responses']}/v1/responses", responses, responses_first,
                   responses_check),
            target("responses", "proxy", f"{gateways['responses']}/v1/responses", {**responses, "store": False},
                   responses_first, responses_check),
            target("responses", "floor", f"{gateways['floor']}/v1/responses", {**responses, "store": False},
                   responses_first, responses_check)]


def start_gateways(tmp: Path, upstream_url: str, args: argparse.Namespace, tag: str) -> dict[str, object]:
    """A gateway per upstream kind, and the floor; all stopped again if one does not start."""
    gateways = {}
    common = {"SKIP_LLM_READY_CHECK": "1"}
    if args.workers:
        common["GATEWAY_WORKERS"] = str(args.workers)
    if args.threads:
        common["GATEWAY_THREADS"] = str(args.threads)
    try:
        for name, env, app in [*((kind, {"UPSTREAM_API": kind}, "app:create_app()") for kind in KINDS),
                               ("floor", {}, "bench.floor_app:create_app()")]:
            folder = tmp / f"{tag}-{name}"
            folder.mkdir()
            gateways[f"{name} gateway"] = start_gateway(folder, upstream_url, {**common, **env}, ready_path="/health",
                                                        app=app)
    except BaseException:
        stop_all(*gateways.values())
        raise
    return gateways


def measure(upstream: str, upstream_server, args: argparse.Namespace, tmp: Path, clients: tuple[str, ...],
            levels: list[tuple[int, int]], tokens: int | None, max_tokens: int | None, model: str,
            deadline: float, phases: list[Phase]) -> None:
    gateways = start_gateways(tmp, upstream_server.url, args, upstream)
    servers = {"upstream": upstream_server, **gateways}
    urls = {kind: gateways[f"{kind} gateway"].url for kind in (*KINDS, "floor")}
    try:
        steps = [(client, c, n) for client in clients for c, n in levels]
        for i, (client, c, n) in enumerate(steps):
            left = deadline - time.perf_counter()
            if left <= 0.5:
                print(f"wall-clock cap reached: skipping {upstream} {client} c={c}", file=sys.stderr)
                continue
            level = run_level(targets(upstream, upstream_server.url, urls, model, client, max_tokens), c, n,
                              args.warmup, args.rounds, tokens, servers, time.perf_counter() + left / (len(steps) - i),
                              phases)
            for phase in level:
                print(f"  {phase.path:40} c={c:<2} {len(phase.samples)}/{n} in {phase.elapsed:.1f} s"
                      f"{' (capped)' if phase.capped else ''}, {len(phase.errors)} errors", file=sys.stderr)
    finally:
        stop_all(*gateways.values())


def run(args: argparse.Namespace, tmp: Path, phases: list[Phase], deadline: float) -> None:
    fake = start_fake(tmp, MODEL, tokens=args.tokens)
    try:
        share = 1.0 if args.no_vllm else 0.4  # of the time left: the rest is for vLLM's start and its runs
        measure("fake", fake, args, tmp, CLIENTS, [(1, args.requests_c1), (16, args.requests_c16)], args.tokens,
                None, MODEL, time.perf_counter() + (deadline - time.perf_counter()) * share, phases)
    finally:
        stop_all(fake)
    if args.no_vllm:
        return
    from tests.vllm.server import VLLMServer

    print("starting vLLM (tiny model without the end-of-answer bias)", file=sys.stderr)
    with VLLMServer(tmp / "vllm.log", eos_bias=0.0) as vllm:
        measure("vllm", vllm, args, tmp, CLIENTS[:1], [(1, args.vllm_requests_c1), (16, args.vllm_requests_c16)],
                None, args.vllm_tokens, vllm.model, deadline, phases)


def settings_line(args: argparse.Namespace) -> str:
    vllm = "" if args.no_vllm else (f"; real vLLM: {args.vllm_requests_c1} / {args.vllm_requests_c16} requests per "
                                    f"target at c=1 / 16, `max_output_tokens: {args.vllm_tokens}`")
    return (f"Requests per target: fake upstream {args.requests_c1} at c=1 and {args.requests_c16} at c=16 "
            f"({args.tokens} deltas each){vllm}; {args.warmup} warm-up, {args.rounds} alternating rounds. "
            f"Gateways: gunicorn with gunicorn.conf.py, workers={args.workers or 'default'}, "
            f"threads={args.threads or 'default'}.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    phases: list[Phase] = []
    interrupted = False
    idle_load = background_cores()
    if idle_load is not None and idle_load > 0.25:
        print(f"warning: other processes keep {idle_load:.2f} CPUs busy; the numbers will be noisy", file=sys.stderr)
    started, t_start = datetime.now(timezone.utc), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        try:
            run(args, Path(tmp), phases, t_start + args.max_seconds)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: reporting what completed", file=sys.stderr)
        except (BenchError, RuntimeError, OSError) as exc:
            print(f"benchmark FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    if not phases:
        print("no phase completed", file=sys.stderr)
        return 1
    text = report(phases, settings_line(args), started, time.perf_counter() - t_start, idle_load, interrupted)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(summary(phases), allow_nan=False))
    failed = any(len(p.samples) == 0 or len(p.errors) >= MAX_ERRORS for p in phases)
    if args.write and (interrupted or failed):
        print(f"not writing {DOC.relative_to(ROOT)}: the run is incomplete", file=sys.stderr)
    elif args.write:
        write_doc(text)
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 130 if interrupted else 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
