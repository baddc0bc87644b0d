"""One Settings object, built from the environment.

Every knob the gateway has lives here so that `create_app(settings)` can be driven by tests
without touching `os.environ`, and gunicorn/`make run` can drive it from the environment.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# Which API the model server is called through: /v1/chat/completions or /v1/responses.
UPSTREAM_APIS = ("chat", "responses")


class SettingsError(ValueError):
    """A malformed environment variable; raised at start-up, never during a request."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _number(env: Mapping[str, str], name: str, default: Any, cast: Callable[[str], Any], kind: str) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def normalize_api_base(raw: str) -> str:
    """Accept `http://host:8000`, `http://host:8000/` or `http://host:8000/v1` alike."""
    base = raw.strip().rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return base


def parse_aliases(raw: str | None) -> dict[str, str]:
    """`alias=upstream-model,alias2=other` → {"alias": "upstream-model", ...}."""
    aliases: dict[str, str] = {}
    for pair in (raw or "").split(","):
        if not pair.strip():
            continue
        alias, sep, target = pair.partition("=")
        if not sep or not alias.strip() or not target.strip():
            raise SettingsError(f"MODEL_ALIASES entry {pair!r} is not alias=upstream-model")
        aliases[alias.strip()] = target.strip()
    return aliases


def parse_timeouts(raw: str | None, default: tuple[float, float]) -> tuple[float, float]:
    """`UPSTREAM_TIMEOUT_S` is either `read` or `connect,read` in seconds."""
    if raw is None or raw.strip() == "":
        return default
    parts = [p.strip() for p in raw.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise SettingsError(f"UPSTREAM_TIMEOUT_S must be 'read' or 'connect,read', got {raw!r}") from exc
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise SettingsError(f"UPSTREAM_TIMEOUT_S values must be positive numbers of seconds, got {raw!r}")
    if len(values) == 1:
        return (min(default[0], values[0]), values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise SettingsError(f"UPSTREAM_TIMEOUT_S must be 'read' or 'connect,read', got {raw!r}")


@dataclass
class Settings:
    llm_api_base: str = "http://127.0.0.1:8000/v1"
    llm_api_key: str = ""
    host: str = "127.0.0.1"
    port: int = 9000
    database_url: str = "sqlite:///gateway.db"
    skip_llm_ready_check: bool = False
    llm_ready_timeout_s: float = 600.0
    model_aliases: dict[str, str] = field(default_factory=dict)
    upstream_timeout_s: tuple[float, float] = (5.0, 300.0)
    log_level: str = "INFO"
    max_request_bytes: int = 32 * 1024 * 1024
    reasoning_output: str = "text"
    reasoning_replay: bool = True
    reasoning_key: str = ""
    model_catalog_file: str = ""
    api_keys: tuple[str, ...] = ()
    api_keys_file: str = ""
    metrics_require_key: bool = False
    log_format: str = "json"
    log_bodies: bool = False
    ws_enabled: bool = True
    ui_enabled: bool = True
    ws_max_connection_age_s: float = 3600.0
    ws_send_buffer_bytes: int = 4 * 1024 * 1024
    ws_send_timeout_s: float = 10.0
    ws_cache_size: int = 16
    ws_idle_timeout_s: float = 900.0
    ws_queued_frames: int = 8
    jsonrpc_max_calls: int = 64
    background_max_runs: int = 256
    upstream_api: str = "chat"
    worker_lease_s: float = 30.0
    request_read_timeout_s: float = 30.0
    response_ttl_days: float = 30.0
    retention_interval_s: float = 3600.0

    def __post_init__(self) -> None:
        self.llm_api_base = normalize_api_base(self.llm_api_base)
        if self.reasoning_output not in ("text", "summary"):
            raise SettingsError("REASONING_OUTPUT must be 'text' or 'summary'")
        if self.log_format not in ("json", "text"):
            raise SettingsError(f"LOG_FORMAT must be 'json' or 'text', got {self.log_format!r}")
        if not 3 <= self.worker_lease_s <= 3600:
            raise SettingsError(f"WORKER_LEASE_S must be between 3 and 3600 seconds, got {self.worker_lease_s:g}")
        if not (math.isfinite(self.response_ttl_days) and self.response_ttl_days >= 0):
            raise SettingsError("RESPONSE_TTL_DAYS must be 0 (keep forever) or a number of days, "
                                f"got {self.response_ttl_days:g}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"GATEWAY_PORT must be a TCP port (1-65535), got {self.port}")
        if self.background_max_runs < 1:
            raise SettingsError(f"BACKGROUND_MAX_RUNS must be at least 1, got {self.background_max_runs}")
        if self.jsonrpc_max_calls < 1:
            raise SettingsError(f"JSONRPC_MAX_CALLS must be at least 1, got {self.jsonrpc_max_calls}")
        if self.upstream_api not in UPSTREAM_APIS:
            raise SettingsError(f"UPSTREAM_API must be 'chat' or 'responses', got {self.upstream_api!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            llm_api_base=env.get("LLM_API_BASE") or defaults.llm_api_base,
            llm_api_key=env.get("LLM_API_KEY", ""),
            host=env.get("GATEWAY_HOST") or defaults.host,
            port=_int(env, "GATEWAY_PORT", defaults.port),
            database_url=env.get("DATABASE_URL") or defaults.database_url,
            skip_llm_ready_check=_bool(env.get("SKIP_LLM_READY_CHECK")),
            llm_ready_timeout_s=_float(env, "LLM_READY_TIMEOUT_S", defaults.llm_ready_timeout_s),
            model_aliases=parse_aliases(env.get("MODEL_ALIASES")),
            upstream_timeout_s=parse_timeouts(env.get("UPSTREAM_TIMEOUT_S"), defaults.upstream_timeout_s),
            log_level=(env.get("LOG_LEVEL") or defaults.log_level).upper(),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", defaults.max_request_bytes),
            reasoning_output=(env.get("REASONING_OUTPUT") or defaults.reasoning_output).lower(),
            reasoning_replay=(env.get("REASONING_REPLAY") or "field").lower() != "drop",
            reasoning_key=env.get("REASONING_KEY", ""),
            model_catalog_file=env.get("MODEL_CATALOG_FILE", ""),
            api_keys=tuple(k.strip() for k in env.get("GATEWAY_API_KEYS", "").split(",") if k.strip()),
            api_keys_file=env.get("GATEWAY_API_KEYS_FILE", "").strip(),
            metrics_require_key=_bool(env.get("METRICS_REQUIRE_KEY")),
            log_format=(env.get("LOG_FORMAT") or defaults.log_format).strip().lower(),
            log_bodies=_bool(env.get("LOG_BODIES")),
            ws_enabled=_bool(env.get("WS_ENABLED"), default=True),
            ui_enabled=_bool(env.get("UI_ENABLED"), default=True),
            ws_max_connection_age_s=_float(env, "WS_MAX_CONNECTION_AGE_S", defaults.ws_max_connection_age_s),
            ws_send_buffer_bytes=_int(env, "WS_SEND_BUFFER_BYTES", defaults.ws_send_buffer_bytes),
            ws_send_timeout_s=_float(env, "WS_SEND_TIMEOUT_S", defaults.ws_send_timeout_s),
            ws_cache_size=_int(env, "WS_CACHE_SIZE", defaults.ws_cache_size),
            ws_idle_timeout_s=_float(env, "WS_IDLE_TIMEOUT_S", defaults.ws_idle_timeout_s),
            ws_queued_frames=_int(env, "WS_QUEUED_FRAMES", defaults.ws_queued_frames),
            jsonrpc_max_calls=_int(env, "JSONRPC_MAX_CALLS", defaults.jsonrpc_max_calls),
            background_max_runs=_int(env, "BACKGROUND_MAX_RUNS", defaults.background_max_runs),
            upstream_api=(env.get("UPSTREAM_API") or defaults.upstream_api).strip().lower(),
            worker_lease_s=_float(env, "WORKER_LEASE_S", defaults.worker_lease_s),
            request_read_timeout_s=_float(env, "REQUEST_READ_TIMEOUT_S", defaults.request_read_timeout_s),
            response_ttl_days=_float(env, "RESPONSE_TTL_DAYS", defaults.response_ttl_days),
            retention_interval_s=_float(env, "RETENTION_INTERVAL_S", defaults.retention_interval_s),
        )

    def upstream_model(self, client_model: str) -> str:
        """The model name sent upstream for the name a client asked for."""
        return self.model_aliases.get(client_model, client_model)
