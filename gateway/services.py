"""The per-app objects views need, stored in `app.extensions["gateway"]`."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.engine import Engine
from gateway.upstream import UpstreamClient
from storage.db import connect_database, db
from storage.migrations import migrate
from storage.repository import Repository


@dataclass
class Services:
    settings: Settings
    upstream: UpstreamClient
    repository: Repository
    engine: Engine

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        db.initialize(connect_database(settings.database_url))
        migrate()
        upstream = UpstreamClient(settings)
        repository = Repository()
        return cls(settings=settings, upstream=upstream, repository=repository,
                   engine=Engine(settings, upstream, repository))
