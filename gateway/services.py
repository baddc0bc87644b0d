"""The per-app objects views need, stored in `app.extensions["gateway"]`."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.catalog import load_overrides
from gateway.config import Settings
from gateway.crypto import ReasoningCipher
from gateway.engine import Engine
from gateway.upstream.client import UpstreamClient
from storage.db import connect_database, db
from storage.migrations import migrate
from storage.repository import Repository


@dataclass
class Services:
    settings: Settings
    upstream: UpstreamClient
    repository: Repository
    engine: Engine
    catalog_overrides: dict

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        db.initialize(connect_database(settings.database_url))
        migrate()
        upstream = UpstreamClient(settings)
        repository = Repository()
        key = settings.reasoning_key or repository.secret("reasoning_key", ReasoningCipher.generate_key)
        return cls(settings=settings, upstream=upstream, repository=repository,
                   engine=Engine(settings, upstream, repository, ReasoningCipher(key)),
                   catalog_overrides=load_overrides(settings.model_catalog_file))
