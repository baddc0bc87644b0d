"""`make bench`: the same 20-token streams, direct to the upstream and through the gateway.

    python -m bench.stream_bench            # print a Markdown report (stdout; progress on stderr)
    python -m bench.stream_bench --write    # ... and rewrite the results in docs/benchmarks.md

The fake upstream (`tests.fakes.upstream --tokens N --delay-ms D`) runs in its own process; the
gateway runs under gunicorn with the shipped gunicorn.conf.py (default workers/threads unless
--workers/--threads), with only host/port/upstream/db and SKIP_LLM_READY_CHECK=1 set. For each
concurrency (1, then 16) both paths get a warm-up, then N measured requests split into rounds
that alternate direct/gateway (a load change on the shared machine hits both alike). A hard
wall-clock cap (--max-seconds) stops new requests; the report covers whatever completed.

Time to first text delta (TTFD) is taken when the bytes of the first event carrying text arrive:
direct, the first chunk whose `delta.content` is non-empty; gateway, the first
`response.output_text.delta` event. Each stream is checked after its clock stopped (N deltas and
`[DONE]` / `response.completed`). CPU per request comes from /proc for this client, the gateway's
gunicorn processes and the fake; "other load" is what the rest of the machine used meanwhile.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench._measure import MAX_ERRORS, BenchError, Phase, Target, _direct_check, _direct_first, \
    _gateway_check, _gateway_first, background_cores, run_level
from bench._report import DOC, report, summary, write_doc
from bench._servers import ROOT, start_fake, start_gateway, stop_all, stop_on_sigterm

MODEL = "bench-model"
PROMPT = "Stream me twenty words, please."


# --- main ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stream_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests-c1", type=int, default=300, help="measured requests at concurrency 1 (300)")
    p.add_argument("--requests-c16", type=int, default=800, help="measured requests at concurrency 16 (800)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured requests per path and concurrency (20)")
    p.add_argument("--rounds", type=int, default=5,
                   help="measured requests are split in this many rounds alternating direct/gateway (5)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for other processes to use < 0.2 CPUs (0: don't)")
    p.add_argument("--tokens", type=int, default=20, help="content deltas per reply (20)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="fake upstream sleep before each delta (0)")
    p.add_argument("--workers", type=int, help="GATEWAY_WORKERS (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, help="GATEWAY_THREADS (default: gunicorn.conf.py's)")
    p.add_argument("--no-store", action="store_true",
                   help='send "store": false (skips the gateway\'s storage write; default: the API default, true)')
    p.add_argument("--max-seconds", type=float, default=120.0, help="hard cap for the whole run (120)")
    p.add_argument("--write", action="store_true", help=f"rewrite the results section of {DOC.relative_to(ROOT)}")
    p.add_argument("--json", metavar="PATH", help="also write the target numbers and phase figures as JSON")
    args = p.parse_args(argv)
    if min(args.requests_c1, args.requests_c16, args.tokens, args.rounds) < 1 or args.warmup < 0 \
            or args.max_seconds <= 0 or args.wait_quiet < 0:
        p.error("request counts, --tokens and --rounds must be ≥ 1, --warmup and --wait-quiet ≥ 0, "
                "--max-seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    fake = gateway = None
    phases: list[Phase] = []
    interrupted = False
    idle_load = background_cores()
    quiet_deadline = time.monotonic() + args.wait_quiet
    while idle_load is not None and idle_load >= 0.2 and time.monotonic() < quiet_deadline:
        idle_load = background_cores(2.0)
    if idle_load is not None and idle_load > 0.25:
        print(f"warning: other processes keep {idle_load:.2f} CPUs busy; the numbers will be noisy",
              file=sys.stderr)
    started, t_start = datetime.now(timezone.utc), time.perf_counter()
    hard_deadline = t_start + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        try:
            fake = start_fake(Path(tmp), MODEL, tokens=args.tokens, delay_ms=args.delay_ms)
            env = {"SKIP_LLM_READY_CHECK": "1"}
            if args.workers:
                env["GATEWAY_WORKERS"] = str(args.workers)
            if args.threads:
                env["GATEWAY_THREADS"] = str(args.threads)
            gateway = start_gateway(Path(tmp), fake.url, env, ready_path="/health")
            servers = {"gateway": gateway, "upstream": fake}
            chat = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
                    "stream_options": {"include_usage": True}}  # what the gateway itself sends upstream
            targets = {
                "direct": Target("direct", f"{fake.url}/v1/chat/completions", json.dumps(chat).encode(),
                                 _direct_first, _direct_check),
                "gateway": Target("gateway", f"{gateway.url}/v1/responses",
                                  json.dumps({"model": MODEL, "input": PROMPT, "stream": True,
                                              **({"store": False} if args.no_store else {})}).encode(),
                                  _gateway_first, _gateway_check),
            }
            levels = [(1, args.requests_c1), (16, args.requests_c16)]
            print(f"fake upstream pid {fake.pid} {fake.url}, gateway pid {gateway.pid} {gateway.url}; "
                  f"cap {args.max_seconds:g} s", file=sys.stderr)
            for i, (c, n) in enumerate(levels):
                left = hard_deadline - time.perf_counter()
                if left <= 0.5:
                    print(f"wall-clock cap reached: skipping concurrency {c}", file=sys.stderr)
                    continue
                level = run_level(list(targets.values()), c, n, args, servers,
                                  time.perf_counter() + left / (len(levels) - i), phases)
                for phase in level:
                    print(f"  {phase.path:7} c={c:<2} {len(phase.samples)}/{n} in {phase.elapsed:.1f} s"
                          f"{' (capped)' if phase.capped else ''}, {len(phase.errors)} errors", file=sys.stderr)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: reporting what completed", file=sys.stderr)
        except (BenchError, RuntimeError, OSError) as exc:
            print(f"benchmark FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_all(fake, gateway)
    if not phases:
        print("no phase completed", file=sys.stderr)
        return 1
    text = report(phases, args, started, time.perf_counter() - t_start, idle_load, interrupted)
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
