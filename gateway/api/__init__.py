"""One blueprint per resource; views parse, call the engine or the tenant's records, and render.

Views never import `storage`: `scope()` (the tenant of the request's API key) is their only way
to stored data (tests/unit/test_boundaries.py enforces it)."""
from flask import current_app, g

from gateway.services import Services, TenantScope
from gateway.tenants import OPEN_TENANT


def services() -> Services:
    return current_app.extensions["gateway"]


def scope() -> TenantScope:
    """The engine and records of the tenant this request authenticated as."""
    return services().scope(g.get("tenant", OPEN_TENANT))
