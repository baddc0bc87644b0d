"""The per-app objects views need, stored in `app.extensions["gateway"]`.

Views and transports reach stored data only through `Services.scope(tenant)`: a `TenantScope`
whose engine and records are bound to that tenant, so a request can neither read nor write another
tenant's responses and conversations, whatever the view does with them.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from gateway.catalog import load_overrides
from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.engine import Engine
from gateway.lifecycle import InFlight, Retention, WorkerLease
from gateway.metrics import TimedRepository
from gateway.tenants import KeyRing
from gateway.upstream.client import UpstreamClient
from storage.db import connect_database, db
from storage.migrations import migrate
from storage.repository import Repository


@dataclass
class TenantScope:
    """Everything one tenant's requests may reach."""

    tenant: str
    engine: Engine
    records: Any          # the tenant's Repository, timed (gateway.metrics.TimedRepository)


@dataclass
class Services:
    settings: Settings
    upstream: UpstreamClient
    keyring: KeyRing
    cipher: ReasoningCipher
    catalog_overrides: dict
    lease: WorkerLease
    in_flight: InFlight = field(default_factory=InFlight)
    _scopes: dict[str, TenantScope] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        keyring = KeyRing.for_settings(settings)
        db.initialize(connect_database(settings.database_url))
        migrate()
        key = settings.reasoning_key or Repository().secret("reasoning_key", ReasoningCipher.generate_key)
        return cls(settings=settings, upstream=UpstreamClient(settings), keyring=keyring,
                   cipher=ReasoningCipher(key), catalog_overrides=load_overrides(settings.model_catalog_file),
                   lease=WorkerLease(settings.worker_lease_s, Retention(
                       settings.response_ttl_days, settings.retention_interval_s).run_if_due).begin())

    def scope(self, tenant: str) -> TenantScope:
        """The tenant's engine and records, built once per tenant and process."""
        scope = self._scopes.get(tenant)
        if scope is None:
            with self._lock:
                scope = self._scopes.get(tenant)
                if scope is None:
                    records: Any = TimedRepository(Repository(tenant))     # a Repository, timed
                    engine = Engine(self.settings, self.upstream, records, self.cipher, self.in_flight,
                                    self.lease.worker_id)
                    scope = TenantScope(tenant, engine, records)
                    self._scopes[tenant] = scope
        return scope

    def check_storage(self) -> None:
        """Raises when the database cannot be written (for `/ready`): renewing the lease is a write."""
        self.lease.renew()

    def close(self) -> None:
        """The worker is exiting: give up its lease."""
        self.lease.stop()
