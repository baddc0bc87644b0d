"""The Responses API gateway: the Responses API (HTTP, SSE, WebSocket, JSON-RPC) in front of a
self-hosted model server, with stored state and Codex's tool shapes."""

NAME = "responses-gateway"
__version__ = "0.13.0"
