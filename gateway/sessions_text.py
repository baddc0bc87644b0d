"""Sessions as text, for `responses-gateway sessions list|show` (what the viewer shows, in a
terminal): a tenant's chains and conversations, and one chain turn by turn — messages, folded
reasoning, tool calls with their namespace and arguments, their outputs, errors and usage."""
from __future__ import annotations

import json
import time
from typing import Any

WIDTH = 100


def when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) if epoch else "-"


def clip(text: str, width: int = WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text") or part.get("refusal") or f"[{part.get('type')}]"
                    for part in content or [] if isinstance(part, dict))


def session_lines(sessions: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'KIND':<13} {'ID':<40} {'CREATED (UTC)':<20} {'STATUS':<11} {'MODEL':<20} {'TURNS':>5} {'TOKENS':>7}"]
    for s in sessions:
        extra = f"  ({s['items']} items)" if s["kind"] == "conversation" else ""
        lines.append(f"{s['kind']:<13} {s['id']:<40} {when(s['created_at']):<20} {s['status'] or '-':<11} "
                     f"{(s['model'] or '-')[:20]:<20} {s['turns'] or '-':>5} {s['tokens'] or '-':>7}{extra}")
    return lines


def item_lines(item: dict[str, Any]) -> list[str]:
    kind = item.get("type", "message")
    if kind == "message":
        return [f"  {item.get('role', '?')}: {clip(text_of(item.get('content')))}"]
    if kind == "reasoning":
        text = text_of(item.get("content")) or text_of(item.get("summary"))
        return [f"  reasoning: (folded, {len(text)} characters)"]
    if kind in ("function_call", "custom_tool_call", "tool_search_call"):
        name = item.get("name") or "tool_search"
        if item.get("namespace"):
            name = f"{item['namespace']}.{name}"
        arguments = item.get("arguments", item.get("input", ""))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return [f"  call {name} ({item.get('call_id')}): {clip(arguments, WIDTH - 20)}"]
    if kind.endswith("_output"):
        output = item.get("output")
        shown = text_of(output) if not isinstance(output, str) else output
        if kind == "tool_search_output":
            shown = f"{len(item.get('tools') or [])} tools loaded"
        return [f"  output ({item.get('call_id')}): {clip(shown or '', WIDTH - 20)}"]
    if kind == "compaction":
        return ["  compaction: (sealed summary of the context before it)"]
    return [f"  {kind}"]


def turn_lines(turns: list[dict[str, Any]]) -> list[str]:
    lines = []
    for turn in turns:
        response = turn["response"]
        usage = response.get("usage") or {}
        tokens = f"tokens in {usage.get('input_tokens', '-')} / out {usage.get('output_tokens', '-')}"
        lines.append(f"Turn {turn['depth'] + 1}  {response.get('id')}  {response.get('status')}  "
                     f"{response.get('model', '-')}  {when(response.get('created_at'))}  {tokens}")
        for item in turn["input"] + turn["output"]:
            lines += item_lines(item)
        error = response.get("error")
        if error:
            lines.append(f"  error {error.get('code')}: {clip(error.get('message') or '')}")
        lines.append("")
    return lines
