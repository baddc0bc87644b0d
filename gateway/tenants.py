"""API keys and the tenants they belong to.

Every stored object belongs to a tenant, and a request acts as the tenant of its key, so one key
never sees what another tenant stored. `GATEWAY_API_KEYS=k1,k2` makes each key its own tenant,
named after a digest of the key (stable across restarts and reorderings, and safe to log);
`GATEWAY_API_KEYS_FILE` names tenants explicitly with `tenant-name: key` lines, several keys per
tenant allowed. With no keys at all there is one tenant, `default`, open to anyone.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from gateway.config import Settings, SettingsError

OPEN_TENANT = "default"
_TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def key_tenant_name(key: str) -> str:
    """The tenant of a key listed in GATEWAY_API_KEYS: a digest, never the key itself."""
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def parse_keys_file(text: str, source: str) -> dict[str, str]:
    """`tenant-name: key` lines (blank lines and `#` comments ignored) → {key: tenant}. Errors
    name the line, never the key on it."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tenant, sep, key = (part.strip() for part in line.partition(":"))
        where = f"GATEWAY_API_KEYS_FILE {source} line {number}"
        if not sep or not key:
            raise SettingsError(f"{where} is not 'tenant-name: key'")
        if not _TENANT_NAME.match(tenant):
            raise SettingsError(f"{where}: tenant name {tenant!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if keys.get(key, tenant) != tenant:
            raise SettingsError(f"{where}: this key is already given to tenant {keys[key]!r}")
        keys[key] = tenant
    if not keys:
        raise SettingsError(f"GATEWAY_API_KEYS_FILE {source} lists no keys")
    return keys


@dataclass(frozen=True)
class KeyRing:
    """Which tenant each accepted key belongs to; empty means the gateway is open."""

    tenants_by_key: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyRing":
        keys = {key: key_tenant_name(key) for key in settings.api_keys}
        if settings.api_keys_file:
            try:
                with open(settings.api_keys_file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise SettingsError(f"GATEWAY_API_KEYS_FILE {settings.api_keys_file}: {exc.strerror or exc}") from exc
            keys.update(parse_keys_file(text, settings.api_keys_file))
        return cls(keys)

    @property
    def open(self) -> bool:
        return not self.tenants_by_key

    @property
    def tenant_names(self) -> set[str]:
        return set(self.tenants_by_key.values()) or {OPEN_TENANT}

    def tenant_for(self, token: str) -> str | None:
        """The tenant of `token`, comparing against every key in constant time per key."""
        found = None
        for key, tenant in self.tenants_by_key.items():
            if hmac.compare_digest(token.encode("utf-8"), key.encode("utf-8")):
                found = tenant
        return found

    @classmethod
    def for_settings(cls, settings: Settings) -> "KeyRing":
        """The keyring the gunicorn master adopted for these settings (workers are forked with it),
        else one read now."""
        if _adopted is not None and _adopted[0] == _source(settings):
            return _adopted[1]
        return cls.from_settings(settings)

    def describe(self) -> str:
        """For the start-up summary (counts only, never keys)."""
        if self.open:
            return "open (no API keys)"
        return f"{len(self.tenant_names)} tenant(s) with {len(self.tenants_by_key)} API key(s)"


OPEN_WARNING = "no API keys configured: the gateway is open to anyone who can reach it (one tenant)"


# The gunicorn master reads the keys (at start and on every SIGHUP) and its workers, forked after,
# use what it read: a keys file broken by an edit is reported and the previous keys kept, instead
# of every new worker failing to boot.
_adopted: tuple[tuple, KeyRing] | None = None


def _source(settings: Settings) -> tuple:
    return settings.api_keys, settings.api_keys_file


def adopt(settings: Settings, keyring: KeyRing) -> None:
    global _adopted
    _adopted = (_source(settings), keyring)


def adopted(settings: Settings) -> KeyRing | None:
    return _adopted[1] if _adopted is not None and _adopted[0] == _source(settings) else None
