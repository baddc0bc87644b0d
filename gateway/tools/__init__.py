"""Codex tool shapes: the request-scoped `ToolMap`."""
from gateway.tools.toolmap import CallTarget, ToolMap

__all__ = ["CallTarget", "ToolMap"]
