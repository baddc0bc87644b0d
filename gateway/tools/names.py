"""Upstream names for namespace members, byte-compatible with agentic-api's scheme.

`agentic_ns__{namespace}__{member}`; a name over 64 characters becomes its first 46 characters,
`__`, and the 16-hex-digit FNV-1a-64 hash of the full name (exactly 64 characters).
"""
from __future__ import annotations

PREFIX = "agentic_ns__"
MAX_NAME = 64
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def fnv1a_64(text: str) -> str:
    value = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def flat_name(namespace: str, member: str) -> str:
    full = f"{PREFIX}{namespace}__{member}"
    if len(full) <= MAX_NAME:
        return full
    return f"{full[:46]}__{fnv1a_64(full)}"
