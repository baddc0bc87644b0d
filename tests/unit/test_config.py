"""Settings.from_env: every knob read from a mapping, malformed values rejected at start-up."""
from __future__ import annotations

import pytest

from gateway.config import Settings, SettingsError


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


# -- defaults --------------------------------------------------------------------------------

def test_default_host_is_loopback():
    assert settings().host == "127.0.0.1"


def test_default_port_is_9000():
    assert settings().port == 9000


def test_default_database_is_local_sqlite():
    assert settings().database_url.startswith("sqlite:///")


def test_default_upstream_is_local_vllm_v1():
    assert settings().llm_api_base == "http://127.0.0.1:8000/v1"


def test_empty_mapping_does_not_read_the_process_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_PORT", "1234")
    assert Settings.from_env({}).port == 9000


def test_host_port_and_database_are_read():
    s = settings(GATEWAY_HOST="0.0.0.0", GATEWAY_PORT="8080", DATABASE_URL="postgresql://db/gw")
    assert (s.host, s.port, s.database_url) == ("0.0.0.0", 8080, "postgresql://db/gw")


# -- LLM_API_BASE ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "http://vllm:8000",
    "http://vllm:8000/",
    "http://vllm:8000/v1",
    "http://vllm:8000/v1/",
    "  http://vllm:8000/v1  ",
])
def test_api_base_is_normalized_to_one_v1_suffix(raw):
    assert settings(LLM_API_BASE=raw).llm_api_base == "http://vllm:8000/v1"


def test_api_base_given_to_the_constructor_is_normalized_too():
    assert Settings(llm_api_base="http://vllm:8000/").llm_api_base == "http://vllm:8000/v1"


# -- MODEL_ALIASES ---------------------------------------------------------------------------

def test_no_aliases_by_default():
    assert settings().model_aliases == {}


def test_aliases_are_parsed_with_whitespace_trimmed():
    s = settings(MODEL_ALIASES=" gpt-5 = Qwen/Qwen3-8B ,fast=small-model,")
    assert s.model_aliases == {"gpt-5": "Qwen/Qwen3-8B", "fast": "small-model"}


@pytest.mark.parametrize("raw", ["gpt-5", "gpt-5=", "=qwen", "a=b,broken"])
def test_malformed_alias_entry_raises(raw):
    with pytest.raises(SettingsError, match="MODEL_ALIASES"):
        settings(MODEL_ALIASES=raw)


def test_upstream_model_resolves_an_alias():
    assert settings(MODEL_ALIASES="gpt-5=qwen3").upstream_model("gpt-5") == "qwen3"


def test_upstream_model_passes_unknown_names_through():
    assert settings(MODEL_ALIASES="gpt-5=qwen3").upstream_model("qwen3") == "qwen3"


# -- UPSTREAM_TIMEOUT_S ----------------------------------------------------------------------

def test_default_timeouts_are_5s_connect_300s_read():
    assert settings().upstream_timeout_s == (5.0, 300.0)


def test_single_timeout_value_sets_the_read_timeout():
    assert settings(UPSTREAM_TIMEOUT_S="60").upstream_timeout_s == (5.0, 60.0)


def test_single_timeout_shorter_than_connect_default_caps_connect_too():
    assert settings(UPSTREAM_TIMEOUT_S="2").upstream_timeout_s == (2.0, 2.0)


def test_connect_and_read_timeouts():
    assert settings(UPSTREAM_TIMEOUT_S="3, 120").upstream_timeout_s == (3.0, 120.0)


@pytest.mark.parametrize("raw", ["soon", "1,2,3", "1,", "3,x"])
def test_malformed_timeout_raises(raw):
    with pytest.raises(SettingsError, match="UPSTREAM_TIMEOUT_S"):
        settings(UPSTREAM_TIMEOUT_S=raw)



@pytest.mark.parametrize("raw", ["0", "-5", "5,0"])
def test_non_positive_timeout_raises(raw):
    with pytest.raises(SettingsError):
        settings(UPSTREAM_TIMEOUT_S=raw)


# -- other numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["GATEWAY_PORT", "LLM_READY_TIMEOUT_S", "MAX_REQUEST_BYTES"])
def test_non_numeric_value_raises_naming_the_variable(name):
    with pytest.raises(SettingsError, match=name):
        settings(**{name: "lots"})


def test_blank_numeric_value_means_default():
    assert settings(GATEWAY_PORT="  ").port == 9000


def test_max_request_bytes_is_read():
    assert settings(MAX_REQUEST_BYTES="1000").max_request_bytes == 1000


# -- SKIP_LLM_READY_CHECK --------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " On "])
def test_skip_ready_check_truthy_values(raw):
    assert settings(SKIP_LLM_READY_CHECK=raw).skip_llm_ready_check is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off", ""])
def test_skip_ready_check_falsy_values(raw):
    assert settings(SKIP_LLM_READY_CHECK=raw).skip_llm_ready_check is False


def test_ready_check_is_on_by_default():
    assert settings().skip_llm_ready_check is False


# -- reasoning knobs -------------------------------------------------------------------------

def test_reasoning_output_defaults_to_text():
    assert settings().reasoning_output == "text"


def test_reasoning_output_summary_is_accepted_case_insensitively():
    assert settings(REASONING_OUTPUT="Summary").reasoning_output == "summary"


def test_unknown_reasoning_output_raises():
    with pytest.raises(SettingsError, match="REASONING_OUTPUT"):
        settings(REASONING_OUTPUT="raw")


def test_reasoning_is_replayed_by_default():
    assert settings().reasoning_replay is True


def test_reasoning_replay_drop_disables_replay():
    assert settings(REASONING_REPLAY="drop").reasoning_replay is False


def test_log_level_is_upper_cased():
    assert settings(LOG_LEVEL="debug").log_level == "DEBUG"


# -- upstream API ----------------------------------------------------------------------------

def test_the_upstream_api_defaults_to_chat():
    assert settings().upstream_api == "chat"


@pytest.mark.parametrize("raw, kind", [("responses", "responses"), (" Responses ", "responses"), ("chat", "chat")])
def test_the_upstream_api_is_read(raw, kind):
    assert settings(UPSTREAM_API=raw).upstream_api == kind


def test_an_unknown_upstream_api_raises_naming_the_choices():
    with pytest.raises(SettingsError, match="UPSTREAM_API must be 'chat' or 'responses'"):
        settings(UPSTREAM_API="completions")
