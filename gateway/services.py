"""The per-app objects views need, stored in `app.extensions["gateway"]`."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.engine import Engine
from gateway.upstream import UpstreamClient


@dataclass
class Services:
    settings: Settings
    upstream: UpstreamClient
    engine: Engine

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        upstream = UpstreamClient(settings)
        return cls(settings=settings, upstream=upstream, engine=Engine(settings, upstream))
