"""API keys → tenants: the keys file format, the names of keys listed in GATEWAY_API_KEYS, lookups."""
from __future__ import annotations

import pytest

from gateway.config import Settings, SettingsError
from gateway.tenants import OPEN_TENANT, KeyRing, key_tenant_name, parse_keys_file


def test_keys_file_maps_each_key_to_its_tenant():
    text = "# team keys\nacme: k-acme-1\n\nacme: k-acme-2\nglobex:k-globex\n"
    assert parse_keys_file(text, "keys.txt") == {"k-acme-1": "acme", "k-acme-2": "acme", "k-globex": "globex"}


@pytest.mark.parametrize("line, problem", [
    ("acme k-acme", "is not 'tenant-name: key'"),
    ("acme:", "is not 'tenant-name: key'"),
    ("bad name: k1", "tenant name 'bad name'"),
    ("-dash: k1", "tenant name '-dash'"),
])
def test_malformed_keys_file_lines_are_named_without_the_key(line, problem):
    with pytest.raises(SettingsError) as raised:
        parse_keys_file(f"ok: k0\n{line}\n", "keys.txt")
    assert "keys.txt line 2" in str(raised.value) and problem in str(raised.value)
    assert "k1" not in str(raised.value)


def test_one_key_cannot_belong_to_two_tenants():
    with pytest.raises(SettingsError, match="already given to tenant 'acme'"):
        parse_keys_file("acme: shared\nglobex: shared\n", "keys.txt")


def test_a_keys_file_without_keys_is_refused():
    with pytest.raises(SettingsError, match="lists no keys"):
        parse_keys_file("# nothing yet\n", "keys.txt")


def test_listed_keys_are_tenants_named_by_a_digest_not_the_key():
    name = key_tenant_name("sk-secret-123")
    assert name == key_tenant_name("sk-secret-123") and name != key_tenant_name("sk-secret-124")
    assert "secret" not in name and name.startswith("key-")


def test_keyring_from_settings_merges_listed_keys_and_the_file(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text("acme: a1\nacme: a2\n")
    ring = KeyRing.from_settings(Settings(api_keys=("solo",), api_keys_file=str(keys_file)))
    assert ring.tenant_for("a1") == ring.tenant_for("a2") == "acme"
    assert ring.tenant_for("solo") == key_tenant_name("solo")
    assert ring.tenant_for("a") is None and ring.tenant_for("") is None
    assert ring.tenant_names == {"acme", key_tenant_name("solo")}


def test_unreadable_keys_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="GATEWAY_API_KEYS_FILE"):
        KeyRing.from_settings(Settings(api_keys_file=str(tmp_path / "missing")))


def test_without_keys_the_gateway_is_one_open_tenant():
    ring = KeyRing.from_settings(Settings())
    assert ring.open and ring.tenant_names == {OPEN_TENANT}
