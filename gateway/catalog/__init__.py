"""The Codex model catalog served at `GET /v1/models?client_version=…`.

One entry per upstream model and alias, built from the entry verified with Codex 0.169.0:
Codex's own prompt as `model_messages.instructions_template`, freeform `apply_patch`, reasoning
levels, text-only input and the context window from the upstream's `max_model_len`. Fields that
switch Codex into modes the gateway cannot serve (`use_responses_lite`, `tool_mode`, plan and
upgrade metadata) are never emitted. `MODEL_CATALOG_FILE` (JSON, or TOML by extension) overrides
fields for all models (`defaults`) or per slug (`models.<slug>`).
"""
from __future__ import annotations

import copy
import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

_INSTRUCTIONS = Path(__file__).with_name("codex_instructions.md")
_FORBIDDEN = ("use_responses_lite", "tool_mode", "upgrade", "available_in_plans", "service_tiers",
              "additional_speed_tiers", "comp_hash", "minimal_client_version")
DEFAULT_CONTEXT_WINDOW = 131072

BASE_ENTRY: dict[str, Any] = {
    "description": "Open-weight model served through the Responses gateway",
    "priority": 1, "visibility": "list", "supported_in_api": True,
    "shell_type": "shell_command", "apply_patch_tool_type": "freeform", "web_search_tool_type": "text",
    "input_modalities": ["text"], "supports_image_detail_original": False,
    "truncation_policy": {"mode": "tokens", "limit": 10000}, "supports_parallel_tool_calls": True,
    "auto_compact_token_limit": None, "default_reasoning_level": "medium",
    "supported_reasoning_levels": [
        {"effort": "low", "description": "Fast responses with lighter reasoning"},
        {"effort": "medium", "description": "Balances speed and reasoning depth for everyday tasks"},
        {"effort": "high", "description": "Greater reasoning depth for complex problems"}],
    "supports_reasoning_summaries": False, "supports_reasoning_summary_parameter": False,
    "default_reasoning_summary": "none", "support_verbosity": False, "default_verbosity": None,
    "supports_search_tool": False, "multi_agent_version": None, "prefer_websockets": False,
    "include_skills_usage_instructions": True, "include_apps_usage_instructions": False,
    "include_plugin_usage_instructions": False, "experimental_supported_tools": [],
}


class CatalogConfigError(ValueError):
    """MODEL_CATALOG_FILE is unreadable or has the wrong shape (raised at start-up)."""


@lru_cache(maxsize=1)
def instructions_template() -> str:
    return _INSTRUCTIONS.read_text(encoding="utf-8")


def load_overrides(path: str) -> dict[str, Any]:
    if not path:
        return {"defaults": {}, "models": {}}
    try:
        raw = Path(path).read_bytes()
        data = tomllib.loads(raw.decode("utf-8")) if path.endswith(".toml") else json.loads(raw)
    except (OSError, ValueError) as exc:
        raise CatalogConfigError(f"MODEL_CATALOG_FILE {path!r} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k, {}), dict) for k in ("defaults", "models")):
        raise CatalogConfigError("MODEL_CATALOG_FILE must hold an object with 'defaults' and/or 'models' objects")
    for slug, override in data.get("models", {}).items():
        if not isinstance(override, dict):
            raise CatalogConfigError(f"MODEL_CATALOG_FILE models.{slug} must be an object of catalog fields")
    return {"defaults": data.get("defaults", {}), "models": data.get("models", {})}


def codex_entry(slug: str, upstream: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"slug": slug, "display_name": slug, **copy.deepcopy(BASE_ENTRY)}
    window = (upstream or {}).get("max_model_len") or (upstream or {}).get("context_length") or DEFAULT_CONTEXT_WINDOW
    entry["context_window"] = entry["max_context_window"] = int(window)
    entry.update(copy.deepcopy(overrides["defaults"]))
    entry.update(copy.deepcopy(overrides["models"].get(slug, {})))
    if not entry.get("base_instructions") and not (entry.get("model_messages") or {}).get("instructions_template"):
        entry["model_messages"] = {"instructions_template": instructions_template()}
    for key in _FORBIDDEN:
        entry.pop(key, None)
    return entry


def codex_catalog(upstream_models: list[dict[str, Any]], aliases: dict[str, str],
                  overrides: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {m["id"]: m for m in upstream_models}
    entries = [codex_entry(m["id"], m, overrides) for m in upstream_models]
    entries += [codex_entry(alias, by_id.get(target), overrides) for alias, target in aliases.items()]
    return entries
