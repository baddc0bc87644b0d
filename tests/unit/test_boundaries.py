"""The tenant boundary is structural: views and transports never import `storage`, so the only way
to stored data is the tenant-scoped service (`gateway.services.TenantScope`)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every module that speaks HTTP, SSE, WebSocket or JSON-RPC to clients.
TRANSPORTS = [*sorted((ROOT / "gateway" / "api").glob("*.py")), *sorted((ROOT / "gateway" / "jsonrpc").glob("*.py")),
              *(ROOT / "gateway" / name for name in ("ws_session.py", "sse.py", "auth.py", "access.py"))]


def storage_imports(source: str) -> list[str]:
    """Every `storage` module a source imports, at any depth in the file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "storage"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "storage":
            found.append(node.module)
    return found


@pytest.mark.parametrize("source, expected", [
    ("import storage", ["storage"]),
    ("from storage.repository import Repository", ["storage.repository"]),
    ("def view():\n    import storage.db as d\n", ["storage.db"]),
    ("from gateway.api import scope\nimport storages", []),
])
def test_the_check_finds_storage_imports_wherever_they_are(source, expected):
    assert storage_imports(source) == expected


@pytest.mark.parametrize("module", TRANSPORTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_views_and_transports_never_import_storage(module):
    assert storage_imports(module.read_text()) == [], f"{module.name} must reach storage through services().scope()"
