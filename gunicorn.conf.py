"""gunicorn settings for the gateway: `gunicorn -c gunicorn.conf.py 'app:create_app()'`.

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
import os
import socket

from gateway.config import Settings

_settings = Settings.from_env()

# Address to listen on: GATEWAY_HOST:GATEWAY_PORT (default 127.0.0.1:9000).
bind = f"{_settings.host}:{_settings.port}"
# Worker processes (GATEWAY_WORKERS); default 2 per CPU core, gunicorn's own rule of thumb. Python
# runs one thread at a time per process, so processes, not threads, scale CPU work (measured in
# docs/benchmarks.md); all state lives in the database, so any worker can serve any request.
workers = int(os.environ.get("GATEWAY_WORKERS", str(max(2, 2 * (os.cpu_count() or 1)))))
# Threaded workers: streaming responses block a thread each, not a whole process.
worker_class = "gthread"
# Threads per worker (GATEWAY_THREADS) = concurrent requests/streams one worker can hold.
threads = int(os.environ.get("GATEWAY_THREADS", "32"))
# Worker heartbeat timeout in seconds (GATEWAY_WORKER_TIMEOUT); gthread keeps long streams alive.
timeout = int(os.environ.get("GATEWAY_WORKER_TIMEOUT", "120"))
# Seconds in-flight streams get to finish on shutdown/reload (GATEWAY_GRACEFUL_TIMEOUT).
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "30"))
# Idle keep-alive seconds for client connections (GATEWAY_KEEPALIVE); Codex reuses connections.
keepalive = int(os.environ.get("GATEWAY_KEEPALIVE", "75"))
# Pending connections the kernel queues while all threads are busy (GATEWAY_BACKLOG).
backlog = int(os.environ.get("GATEWAY_BACKLOG", "2048"))
# gunicorn's own log level follows LOG_LEVEL.
loglevel = _settings.log_level.lower()
# Access log to stdout when GATEWAY_ACCESS_LOG=1 (off by default: it costs time per request).
accesslog = "-" if os.environ.get("GATEWAY_ACCESS_LOG") == "1" else None
# Error log to stderr.
errorlog = "-"


def on_starting(server):
    """Wait for the upstream before accepting traffic, unless SKIP_LLM_READY_CHECK is set."""
    if _settings.skip_llm_ready_check:
        return
    from gateway.upstream import UpstreamClient

    client = UpstreamClient(_settings)
    server.log.info("waiting up to %ss for upstream %s/health", _settings.llm_ready_timeout_s, client.root)
    if not client.wait_until_healthy(_settings.llm_ready_timeout_s):
        server.log.error("upstream %s did not become healthy within LLM_READY_TIMEOUT_S; starting anyway "
                         "(/ready answers 503 until it does)", client.root)


def when_ready(server):
    """Disable Nagle on the listeners (accepted sockets inherit it): each SSE event leaves at once."""
    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# gunicorn's control socket (GATEWAY_CONTROL_SOCKET = a path to enable it); off by default so that
# several gateways on one host never share the default ~/.gunicorn/gunicorn.ctl.
if os.environ.get("GATEWAY_CONTROL_SOCKET"):
    control_socket = os.environ["GATEWAY_CONTROL_SOCKET"]
else:
    control_socket_disable = True
