"""gunicorn settings for the gateway: `gunicorn -c gateway/gunicorn_conf.py 'app:create_app()'`.

Every value can be overridden from the environment (names below).

Sizing. With gthread workers every open SSE stream and every open WebSocket occupies one worker
thread for its whole life (a WebSocket also runs two helper threads of its own: simple-websocket's
reader and the gateway's writer, which are not counted against GATEWAY_THREADS). So one worker
holds at most GATEWAY_THREADS concurrent streams + sockets, and the gateway at most
GATEWAY_WORKERS × GATEWAY_THREADS. Codex keeps one WebSocket per running `codex` process (the TUI
opens a few short extra ones), so size threads for (concurrent Codex sessions + concurrent HTTP
streams) per worker with headroom; threads are cheap while they wait on the network (~100 KB
each). The per-connection send buffer (WS_SEND_BUFFER_BYTES, 4 MiB) bounds the memory a slow
reader can pin. Beyond the thread count, new connections wait in the listen backlog.
"""
import gc
import glob
import os
import shutil
import socket
import tempfile

from gateway.lifecycle import drain_on_sigterm
from gateway.logs import dict_config
from gateway.startup import ReadinessWatch, check_database, load_settings, refuse

# A bad setting ends start-up here with one line naming it (exit code 2).
_settings, _keyring = load_settings()

# Metrics from every worker are merged through files in this directory (prometheus-client's
# multiprocess mode); it must be set before any worker imports prometheus_client.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")

# Address to listen on: GATEWAY_HOST:GATEWAY_PORT (default 127.0.0.1:9000).
bind = f"{_settings.host}:{_settings.port}"
# Worker processes (GATEWAY_WORKERS); default 2 per CPU core, gunicorn's own rule of thumb. Python
# runs one thread at a time per process, so processes, not threads, scale CPU work (measured in
# docs/benchmarks.md); all state lives in the database, so any worker can serve any request.
workers = int(os.environ.get("GATEWAY_WORKERS", str(max(2, 2 * (os.cpu_count() or 1)))))
# Threaded workers (gthread): streaming responses block a thread each, not a whole process. The
# gateway's subclass bounds the time to read a request (REQUEST_READ_TIMEOUT_S, so slow clients
# cannot hold every thread) and answers gunicorn's own parse errors in the OpenAI JSON shape.
worker_class = "gateway.worker.GatewayWorker"
# Threads per worker (GATEWAY_THREADS) = concurrent requests, streams and WebSockets one worker can
# hold. 512 × 4 workers: on 2 cores `make bench-scale` holds 1,000 SSE streams and 500 WebSockets at
# once with no session waiting for a thread and under 400 MB (docs/benchmarks.md). A waiting thread
# costs next to nothing; a session waiting for one waits a whole reply of someone else's (with 32,
# the 129th stream did).
threads = int(os.environ.get("GATEWAY_THREADS", "512"))
# Connections one worker keeps at once, busy or kept alive between requests (gunicorn's default is
# 1,000): room for every thread plus as many idle keep-alive clients.
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS", str(max(1000, 2 * threads))))
# Worker heartbeat timeout in seconds (GATEWAY_WORKER_TIMEOUT); gthread keeps long streams alive.
timeout = int(os.environ.get("GATEWAY_WORKER_TIMEOUT", "120"))
# Seconds in-flight streams get to finish on shutdown/reload (GATEWAY_GRACEFUL_TIMEOUT).
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "30"))
# Idle keep-alive seconds for client connections (GATEWAY_KEEPALIVE); Codex reuses connections.
keepalive = int(os.environ.get("GATEWAY_KEEPALIVE", "75"))
# One listening socket per worker (SO_REUSEPORT; GATEWAY_REUSE_PORT=0 turns it off): the kernel
# spreads new connections over the workers. With one shared socket, the worker that happens to be
# awake accepts a burst of keep-alive connections and serves them all from one CPU while others idle
# (16 keep-alive clients all on one of 4 workers halved the throughput; docs/benchmarks.md).
# on_starting refuses an address another server already listens on, which SO_REUSEPORT alone allows.
# Trade-off: on a reload (HUP) connections still queued on an exiting worker's socket are reset;
# set GATEWAY_REUSE_PORT=0 if you reload under heavy load.
reuse_port = os.environ.get("GATEWAY_REUSE_PORT", "1") != "0"
# Pending connections the kernel queues while all threads are busy (GATEWAY_BACKLOG).
backlog = int(os.environ.get("GATEWAY_BACKLOG", "2048"))
# gunicorn's own log level follows LOG_LEVEL, and its lines share the gateway's format (LOG_FORMAT).
loglevel = _settings.log_level.lower()
logconfig_dict = dict_config(_settings.log_level, _settings.log_format,
                             gunicorn_access=os.environ.get("GATEWAY_ACCESS_LOG") == "1")
# gunicorn's own access lines (GATEWAY_ACCESS_LOG=1) come on top of the gateway's, which every
# request gets (gateway/access.py).
accesslog = "-" if os.environ.get("GATEWAY_ACCESS_LOG") == "1" else None
# Error log to stderr.
errorlog = "-"


def _refuse_address_in_use(server):
    """With SO_REUSEPORT a second server could silently share the port; fail as without it."""
    family = socket.AF_INET6 if ":" in _settings.host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        probe.bind((_settings.host, _settings.port))
    except OSError as exc:
        refuse(f"GATEWAY_HOST/GATEWAY_PORT: cannot listen on {bind}: {exc.strerror or exc}")
    finally:
        probe.close()


def on_starting(server):
    """Refuse a taken address or an unusable database with one line; start from empty metrics."""
    if server.cfg.reuse_port:
        _refuse_address_in_use(server)
    check_database(_settings)
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def when_ready(server):
    """gunicorn's own "Listening at" line is empty when every worker binds its own socket."""
    if server.cfg.reuse_port:
        server.log.info("Listening at: http://%s (one socket per worker)", bind)


def worker_exit(server, worker):
    """A worker leaving gracefully gives up its lease (storage/leases.py)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("gateway")
    if services is not None:
        services.close()


def child_exit(server, worker):
    """A worker's live gauges (active streams, WebSockets) leave the totals with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker):
    """Move everything the app allocated at start-up out of the garbage collector's sight: a full
    collection then scans only per-request objects instead of ~50,000 long-lived ones (~15 ms each
    time it ran mid-stream).

    The first worker reports the wait for the upstream and then one summary line, from a thread, so
    the gateway answers `/health` (and `/ready` with its reason) from the first second. Not from
    the master: a thread running there while it forks workers can leave them deadlocked on a lock
    it held."""
    gc.collect()
    gc.freeze()
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("gateway")
    if services is not None:
        drain_on_sigterm(services.in_flight, worker.cfg.graceful_timeout)
    if worker.age == 1:
        ReadinessWatch(_settings, _keyring, worker.cfg.workers, worker.cfg.threads).start()


# gunicorn's control socket (GATEWAY_CONTROL_SOCKET = a path to enable it); off by default so that
# several gateways on one host never share the default ~/.gunicorn/gunicorn.ctl.
if os.environ.get("GATEWAY_CONTROL_SOCKET"):
    control_socket = os.environ["GATEWAY_CONTROL_SOCKET"]
else:
    control_socket_disable = True
