"""The Codex model catalog (`GET /v1/models?client_version=…`): codex-cli.md §8, peers.md §2.5.

Entries must decode in Codex 0.169.0 (the minimum keys of §8.3), follow the recommended entry of
§8.5, take their context window from the upstream's `max_model_len`, and never carry the fields
that switch Codex into modes the gateway cannot serve. `MODEL_CATALOG_FILE` overrides (JSON or
TOML) apply to all models (`defaults`) or one slug (`models.<slug>`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.catalog import (BASE_ENTRY, DEFAULT_CONTEXT_WINDOW, CatalogConfigError, codex_catalog, codex_entry,
                             instructions_template, load_overrides)
from tests.unit.conftest import UPSTREAM_BASE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex"  # captured Codex traffic
NO_OVERRIDES = {"defaults": {}, "models": {}}
REQUIRED_KEYS = ("slug", "display_name", "priority", "visibility", "supported_in_api", "shell_type",
                 "support_verbosity", "supported_reasoning_levels", "truncation_policy",
                 "experimental_supported_tools")
FORBIDDEN = ("use_responses_lite", "tool_mode", "upgrade", "available_in_plans", "service_tiers",
             "additional_speed_tiers", "comp_hash", "minimal_client_version")
UPSTREAM = [{"id": "fake-model", "object": "model", "max_model_len": 32768},
            {"id": "other-model", "object": "model", "max_model_len": 8192}]
FORBIDDEN_VALUES = {"use_responses_lite": True, "tool_mode": "code_mode_only", "upgrade": {"model": "gpt-9"},
                    "available_in_plans": ["pro"], "service_tiers": ["priority"],
                    "additional_speed_tiers": ["fast"], "comp_hash": "abc", "minimal_client_version": "9.9.9"}


def entry(slug="fake-model", upstream=None, overrides=None):
    return codex_entry(slug, upstream if upstream is not None else {"id": slug, "max_model_len": 32768},
                       overrides or NO_OVERRIDES)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- the entry -------------------------------------------------------------------------------

def test_entry_has_every_key_codex_requires():
    e = entry()
    missing = [k for k in REQUIRED_KEYS if k not in e]
    assert not missing
    assert e["slug"] == "fake-model" and e["display_name"] == "fake-model"
    assert isinstance(e["priority"], int)
    assert e["visibility"] == "list" and e["supported_in_api"] is True
    assert e["shell_type"] == "shell_command"
    assert e["support_verbosity"] is False
    assert e["experimental_supported_tools"] == []
    assert e["truncation_policy"]["mode"] in ("tokens", "bytes") and e["truncation_policy"]["limit"] > 0


def test_entry_instructions_template_is_codex_prompt():
    template = entry()["model_messages"]["instructions_template"]
    assert isinstance(template, str) and template.strip()
    assert template == instructions_template()
    assert template.startswith("You are Codex")


def test_entry_reasoning_levels():
    e = entry()
    levels = e["supported_reasoning_levels"]
    assert [level["effort"] for level in levels] == ["low", "medium", "high"]
    assert all(isinstance(level["description"], str) and level["description"] for level in levels)
    assert e["default_reasoning_level"] in [level["effort"] for level in levels]


def test_entry_codex_behaviour_fields():
    e = entry()
    assert e["input_modalities"] == ["text"]
    assert e["supports_parallel_tool_calls"] is True
    assert e["prefer_websockets"] is False
    assert e["apply_patch_tool_type"] == "freeform"
    assert e["supports_search_tool"] is False


def test_entry_never_carries_forbidden_keys():
    e = entry()
    assert not [k for k in FORBIDDEN if k in e]


def test_entry_matches_the_verified_recommended_entry():
    path = FIXTURES / "models_recommended.json"
    [recommended] = json.loads(path.read_text())["models"]
    e = entry(upstream={"id": "fake-model", "max_model_len": recommended["context_window"]})
    skip = {"slug", "display_name", *FORBIDDEN}
    for key, value in recommended.items():
        if key in skip:
            continue
        assert e[key] == value, key
    # the recommended entry spells the forbidden switches out as off; the gateway omits them instead
    assert recommended["use_responses_lite"] is False and recommended["tool_mode"] is None


def test_entry_is_json_serialisable():
    assert json.loads(json.dumps(entry())) == entry()


# -- context window --------------------------------------------------------------------------

def test_context_window_comes_from_max_model_len():
    e = entry(upstream={"id": "fake-model", "max_model_len": 32768})
    assert e["context_window"] == e["max_context_window"] == 32768


def test_context_window_falls_back_to_context_length_then_default():
    assert entry(upstream={"id": "m", "context_length": 4096})["context_window"] == 4096
    assert entry(upstream={"id": "m"})["context_window"] == DEFAULT_CONTEXT_WINDOW
    assert codex_entry("m", None, NO_OVERRIDES)["context_window"] == DEFAULT_CONTEXT_WINDOW


def test_catalog_has_one_entry_per_model_and_alias_with_the_targets_window():
    catalog = codex_catalog(UPSTREAM, {"alias-model": "fake-model", "small": "other-model"}, NO_OVERRIDES)
    assert [e["slug"] for e in catalog] == ["fake-model", "other-model", "alias-model", "small"]
    windows = {e["slug"]: e["context_window"] for e in catalog}
    assert windows == {"fake-model": 32768, "other-model": 8192, "alias-model": 32768, "small": 8192}
    assert {e["slug"]: e["max_context_window"] for e in catalog} == windows
    for e in catalog:
        assert e["display_name"] == e["slug"]
        assert e["model_messages"]["instructions_template"] == instructions_template()


def test_alias_to_an_unknown_model_gets_the_default_window():
    [_, alias] = codex_catalog(UPSTREAM[:1], {"ghost": "missing-model"}, NO_OVERRIDES)
    assert alias["slug"] == "ghost" and alias["context_window"] == DEFAULT_CONTEXT_WINDOW


def test_entries_do_not_share_state():
    first, second = codex_catalog(UPSTREAM, {}, NO_OVERRIDES)
    first["supported_reasoning_levels"].append({"effort": "xhigh"})
    first["truncation_policy"]["limit"] = 1
    assert len(second["supported_reasoning_levels"]) == 3
    assert entry()["truncation_policy"] == BASE_ENTRY["truncation_policy"]
    assert len(BASE_ENTRY["supported_reasoning_levels"]) == 3


# -- overrides -------------------------------------------------------------------------------

def test_defaults_apply_to_every_model_and_per_model_overrides_win():
    overrides = {"defaults": {"input_modalities": ["text", "image"], "priority": 5},
                 "models": {"other-model": {"priority": 9, "display_name": "Other",
                                            "truncation_policy": {"mode": "bytes", "limit": 100000}}}}
    fake, other = codex_catalog(UPSTREAM, {}, overrides)
    assert fake["input_modalities"] == other["input_modalities"] == ["text", "image"]
    assert fake["priority"] == 5 and other["priority"] == 9
    assert other["display_name"] == "Other" and other["slug"] == "other-model"
    assert other["truncation_policy"] == {"mode": "bytes", "limit": 100000}
    assert fake["truncation_policy"] == BASE_ENTRY["truncation_policy"]


def test_override_can_set_the_context_window():
    e = entry(overrides={"defaults": {}, "models": {"fake-model": {"context_window": 1000,
                                                                   "auto_compact_token_limit": 800}}})
    assert e["context_window"] == 1000 and e["auto_compact_token_limit"] == 800


def test_forbidden_keys_are_dropped_even_when_an_override_sets_them():
    overrides = {"defaults": dict(FORBIDDEN_VALUES), "models": {"fake-model": dict(FORBIDDEN_VALUES)}}
    for e in codex_catalog(UPSTREAM, {"alias-model": "fake-model"}, overrides):
        assert not [k for k in FORBIDDEN if k in e], e["slug"]


def test_override_with_empty_model_messages_still_gets_the_template():
    e = entry(overrides={"defaults": {"model_messages": {}}, "models": {}})
    assert e["model_messages"]["instructions_template"] == instructions_template()


def test_override_with_its_own_instructions():
    e = entry(overrides={"defaults": {}, "models": {"fake-model": {
        "model_messages": {"instructions_template": "Custom prompt."}}}})
    assert e["model_messages"] == {"instructions_template": "Custom prompt."}
    e = entry(overrides={"defaults": {"base_instructions": "Base prompt."}, "models": {}})
    assert e["base_instructions"] == "Base prompt."


def test_overrides_are_not_mutated_by_building_entries():
    overrides = {"defaults": {"truncation_policy": {"mode": "bytes", "limit": 5}}, "models": {}}
    snapshot = json.dumps(overrides)
    first, _ = codex_catalog(UPSTREAM, {}, overrides)
    first["truncation_policy"]["limit"] = 99
    assert json.dumps(overrides) == snapshot


# -- MODEL_CATALOG_FILE ----------------------------------------------------------------------

def test_no_file_means_no_overrides():
    assert load_overrides("") == NO_OVERRIDES


def test_json_override_file(tmp_path):
    path = write(tmp_path, "catalog.json", json.dumps({
        "defaults": {"input_modalities": ["text", "image"]},
        "models": {"fake-model": {"display_name": "Fake", "use_responses_lite": True}}}))
    overrides = load_overrides(path)
    assert overrides == {"defaults": {"input_modalities": ["text", "image"]},
                         "models": {"fake-model": {"display_name": "Fake", "use_responses_lite": True}}}
    fake, other = codex_catalog(UPSTREAM, {}, overrides)
    assert fake["display_name"] == "Fake" and "use_responses_lite" not in fake
    assert other["input_modalities"] == ["text", "image"]


def test_json_file_with_only_models(tmp_path):
    overrides = load_overrides(write(tmp_path, "c.json", '{"models": {"m": {"priority": 3}}}'))
    assert overrides == {"defaults": {}, "models": {"m": {"priority": 3}}}


def test_toml_override_file(tmp_path):
    path = write(tmp_path, "catalog.toml", """
[defaults]
input_modalities = ["text", "image"]
supports_parallel_tool_calls = false

[defaults.truncation_policy]
mode = "bytes"
limit = 100000

[models."fake-model"]
display_name = "Fake via TOML"
context_window = 4096
tool_mode = "code_mode_only"
""")
    overrides = load_overrides(path)
    fake, other = codex_catalog(UPSTREAM, {}, overrides)
    assert fake["display_name"] == "Fake via TOML" and fake["context_window"] == 4096
    assert "tool_mode" not in fake
    assert other["display_name"] == "other-model" and other["context_window"] == 8192
    for e in (fake, other):
        assert e["input_modalities"] == ["text", "image"]
        assert e["supports_parallel_tool_calls"] is False
        assert e["truncation_policy"] == {"mode": "bytes", "limit": 100000}


@pytest.mark.parametrize("name,text", [
    ("broken.json", "{not json"),
    ("broken.toml", "[defaults\nx = "),
    ("list.json", "[1, 2]"),
    ("string.json", '"catalog"'),
    ("defaults.json", '{"defaults": ["priority"]}'),
    ("models.json", '{"models": "fake-model"}'),
    ("models.toml", 'models = 3'),
    ("binary.json", "\udcff"),
])
def test_bad_override_file_raises_catalog_config_error(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CatalogConfigError):
        load_overrides(str(path))


def test_missing_override_file_raises_catalog_config_error(tmp_path):
    with pytest.raises(CatalogConfigError) as info:
        load_overrides(str(tmp_path / "absent.json"))
    assert "absent.json" in str(info.value)


@pytest.mark.parametrize("text", ['{"models": {"fake-model": "oops"}}', '{"models": {"fake-model": [1]}}'])
def test_per_model_override_that_is_not_an_object_is_rejected_at_load(tmp_path, text):
    with pytest.raises(CatalogConfigError):
        load_overrides(write(tmp_path, "c.json", text))


def test_catalog_config_error_is_a_value_error():
    assert issubclass(CatalogConfigError, ValueError)


# -- through the app -------------------------------------------------------------------------

def _mock_models(upstream):
    upstream.get(f"{UPSTREAM_BASE}/v1/models", json={"object": "list", "data": UPSTREAM})


def test_app_serves_overrides_from_model_catalog_file(make_app, upstream, tmp_path):
    path = write(tmp_path, "catalog.json", json.dumps({"models": {"fake-model": {"display_name": "Fake",
                                                                                  "upgrade": {"model": "x"}}}}))
    _mock_models(upstream)
    client = make_app(model_catalog_file=path, model_aliases={"alias-model": "fake-model"}).test_client()
    resp = client.get("/v1/models?client_version=0.169.0")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake-model", "other-model", "alias-model"]
    models = {m["slug"]: m for m in body["models"]}
    assert list(models) == ["fake-model", "other-model", "alias-model"]
    assert models["fake-model"]["display_name"] == "Fake" and "upgrade" not in models["fake-model"]
    assert models["alias-model"]["context_window"] == 32768
    assert models["other-model"]["context_window"] == 8192


def test_app_without_client_version_has_no_codex_models(make_app, upstream):
    _mock_models(upstream)
    resp = make_app().test_client().get("/v1/models")
    assert resp.status_code == 200
    assert "models" not in resp.get_json()


def test_app_refuses_to_start_with_a_bad_catalog_file(make_app, tmp_path):
    with pytest.raises(CatalogConfigError):
        make_app(model_catalog_file=write(tmp_path, "bad.json", "{oops"))
