"""`responses-gateway doctor`: checks a deployment the way Codex will use it, says what is wrong and
how to fix it, and prints a Codex `config.toml` that works with it.

Each check prints as it runs (a model call on a CPU can take a while). Failures make the exit code
1; warnings do not.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import requests

from gateway.config import Settings
from gateway.tenants import KeyRing
from gateway.tools import ToolMap
from gateway.upstream.client import UpstreamClient

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_CONTEXT = 16384     # below this Codex's base prompt and tools leave little room for a session
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ECHO_NAMESPACE = {"type": "namespace", "name": "mcp__echo", "description": "Echo tools.",
                  "tools": [{"type": "function", "name": "echo", "description": "Echo back the text.",
                             "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                                            "required": ["text"]}}]}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.", "format": {"type": "text"}}
SEARCH = {"type": "tool_search", "description": "Find more tools."}
TOOL_PARSER_FIX = ("start vLLM with --enable-auto-tool-choice --tool-call-parser <the model's parser> (hermes for "
                   "Qwen, llama3_json for Llama 3, openai for gpt-oss)")


@dataclass
class Result:
    status: str
    name: str
    detail: str
    fix: str = ""


class Doctor:
    def __init__(self, settings: Settings, keyring: KeyRing, out: Callable[[str], None] = print) -> None:
        self.settings, self.keyring, self.out = settings, keyring, out
        self.client = UpstreamClient(settings)
        self.results: list[Result] = []
        self.model: str | None = None

    def report(self, status: str, name: str, detail: str, fix: str = "") -> None:
        self.results.append(Result(status, name, detail, fix))
        self.out(f"  [{status:>4}] {name}: {detail}" + (f"\n         fix: {fix}" if fix else ""))

    def run(self) -> int:
        self.out(f"Checking the upstream at {self.settings.llm_api_base} ({self.settings.upstream_api} API):")
        if self.check_upstream():
            self.check_calls()
        self.out("Checking storage and keys:")
        self.check_database()
        self.check_keys()
        failed = [r for r in self.results if r.status == FAIL]
        self.out(f"\n{len(failed)} problem(s), {sum(r.status == WARN for r in self.results)} warning(s).")
        self.out("\nA Codex config.toml for this gateway (~/.codex/config.toml):\n\n" + self.codex_config())
        return 1 if failed else 0

    # -- the upstream ----------------------------------------------------------------------
    def check_upstream(self) -> bool:
        if self.client.is_healthy(max_age_s=0):
            self.report(OK, "health", f"{self.client.root}/health answered 200")
        else:
            self.report(WARN, "health", f"{self.client.root}/health did not answer 200",
                        "vLLM answers it once its model is loaded; other servers may have no /health (then set "
                        "SKIP_LLM_READY_CHECK=1)")
        try:
            models = self.client.list_models()
        except Exception as exc:
            self.report(FAIL, "models", f"GET {self.settings.llm_api_base}/models failed: {exc}",
                        "check LLM_API_BASE (it must end in /v1) and that the model server is running")
            return False
        if not models:
            self.report(FAIL, "models", "the upstream lists no models", "start the model server with a model")
            return False
        self.model = next(iter(self.settings.model_aliases), None) or models[0]["id"]
        self.report(OK, "models", ", ".join(m["id"] for m in models[:5]))
        window = models[0].get("max_model_len")
        if window is None:
            self.report(WARN, "context length", "the upstream does not say (no max_model_len)",
                        "set context_window in MODEL_CATALOG_FILE so Codex knows it")
        elif window < MIN_CONTEXT:
            self.report(WARN, "context length", f"{window} tokens",
                        f"Codex needs more: restart vLLM with --max-model-len {MIN_CONTEXT * 2} or more")
        else:
            self.report(OK, "context length", f"{window} tokens")
        return True

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        model = self.settings.upstream_model(self.model or "")
        resp = self.client.session.post(f"{self.settings.llm_api_base}/chat/completions", timeout=(5, 300),
                                        data=json.dumps({"model": model, "max_tokens": 256, **body}))
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()["choices"][0]["message"]

    def check_calls(self) -> None:
        self.out("  … asking the model for a forced tool call (can take a while on a CPU)")
        self._forced_call("forced tool call", [WEATHER], "get_weather", None)
        self.out("  … and for calls to Codex's other tool shapes: a namespace (an MCP server's tools), "
                 "a custom tool (apply_patch), tool_search")
        self._forced_call("namespace tool call", [ECHO_NAMESPACE], None, "mcp__echo")
        self._forced_call("custom tool call", [PATCH], "apply_patch", None, "custom_tool_call")
        self._forced_call("tool_search call", [SEARCH], "tool_search", None, "tool_search_call")
        try:
            message = self._chat({"messages": [{"role": "user", "content": "Is 17 prime? Think, then answer."}],
                                  "reasoning_effort": "low"})
        except (RuntimeError, requests.RequestException) as exc:
            self.report(WARN, "reasoning", f"could not ask: {exc}")
            return
        if message.get("reasoning") or message.get("reasoning_content"):
            self.report(OK, "reasoning", "the model's reasoning comes back (Codex shows it, encrypted replay works)")
        else:
            self.report(WARN, "reasoning", "no reasoning in the answer",
                        "fine for a model that does not reason; for one that does, start vLLM with "
                        "--reasoning-parser <the model's parser>")

    def _forced_call(self, name: str, tools: list[dict[str, Any]], function: str | None, namespace: str | None,
                     item_type: str = "function_call") -> None:
        tool_map = ToolMap.build(tools)
        try:
            message = self._chat({"messages": [{"role": "user", "content": "Use the tool now, with any argument."}],
                                  "tools": tool_map.functions, "tool_choice": "required"})
        except (RuntimeError, requests.RequestException) as exc:
            fix = TOOL_PARSER_FIX if "tool" in str(exc).lower() else "check the model server's log"
            self.report(FAIL, name, str(exc), fix)
            return
        calls = message.get("tool_calls") or []
        if not calls:
            self.report(FAIL, name, "the model answered without a tool call", TOOL_PARSER_FIX)
            return
        target = tool_map.restore(calls[0]["function"]["name"])
        if ((function and target.name != function) or (namespace and target.namespace != namespace)
                or target.item_type != item_type):
            self.report(FAIL, name, f"the model called {calls[0]['function']['name']!r}, which is not the tool",
                        "use a model that follows tool schemas (an instruct model with its tool parser)")
            return
        self.report(OK, name, f"{target.namespace + '.' if target.namespace else ''}{target.name}")

    # -- storage and keys ------------------------------------------------------------------
    def check_database(self) -> None:
        from storage.db import connect_database, db, probe_database
        from storage.migrations import SCHEMA_VERSION, current_version

        try:
            probe_database(self.settings.database_url, timeout_s=5)
            db.initialize(connect_database(self.settings.database_url))
            version = current_version()
        except Exception as exc:
            self.report(FAIL, "database", f"{exc.__class__.__name__}: {str(exc).strip()[:200]}",
                        "check DATABASE_URL (sqlite:///path or postgresql://user@host/db) and that it accepts writes")
            return
        if version < SCHEMA_VERSION:
            self.report(WARN, "database", f"schema version {version} of {SCHEMA_VERSION}",
                        "the gateway applies the missing migrations when it starts")
        else:
            self.report(OK, "database", f"schema version {version}")

    def check_keys(self) -> None:
        if not self.keyring.open:
            self.report(OK, "keys", self.keyring.describe())
        elif self.settings.host in ("127.0.0.1", "localhost", "::1"):
            self.report(WARN, "keys", "none: the gateway is open, but listens on loopback only",
                        "set GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE before listening on other addresses")
        else:
            self.report(FAIL, "keys", f"none, and the gateway listens on {self.settings.host}: anyone can use it",
                        "set GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE")

    def codex_config(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        base = f"http://{host}:{self.settings.port}/v1"
        return (f'model = "{self.model or "your-model"}"\nmodel_provider = "gateway"\n\n'
                f'[model_providers.gateway]\nname = "Responses gateway"\nbase_url = "{base}"\n'
                f'wire_api = "responses"\nenv_key = "GATEWAY_API_KEY"\n'
                f'supports_websockets = {"true" if self.settings.ws_enabled else "false"}\n'
                f'model_catalog_url = "{base}/models"\n')
