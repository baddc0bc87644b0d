"""JSON-RPC delegation: the gateway as the peer an agent host (Codex's app-server with
`responses_http_over_jsonrpc`) hands its Responses API calls to (`responsesApi/call`), over stdio
(`python -m gateway.jsonrpc`) or a WebSocket (`/v1/jsonrpc`). docs/jsonrpc.md has the protocol."""
