"""Reasoning carried through `encrypted_content` (Fernet: AES-128-CBC + HMAC-SHA256).

Codex over HTTP sends `store: false` and replays earlier reasoning items itself, so the only
place the gateway can keep the model's reasoning across turns is the item's `encrypted_content`.
The blob is authenticated: a tampered, truncated or foreign value is ignored (logged), never an
error. The key comes from `REASONING_KEY`, or is generated once and kept in the database so
every worker and every gateway instance sharing the database uses the same key.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger(__name__)


class ReasoningCipher:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, text: str, purpose: str = "reasoning") -> str:
        """`text` sealed for one purpose (reasoning, compaction): a blob made for one never opens as the other."""
        payload = {"v": 1, "text": text} if purpose == "reasoning" else {"v": 1, "purpose": purpose, "text": text}
        return self._fernet.encrypt(json.dumps(payload).encode("utf-8")).decode("ascii")

    def open(self, blob: Any, purpose: str = "reasoning") -> str | None:
        """The text inside a blob this gateway sealed for `purpose`, or None (logged) for anything else."""
        if not isinstance(blob, str) or not blob:
            return None
        try:
            payload = json.loads(self._fernet.decrypt(blob.encode("ascii")))
            text = payload["text"]
            sealed_for = payload.get("purpose", "reasoning")
        except (InvalidToken, ValueError, KeyError, TypeError, AttributeError, UnicodeEncodeError):
            sealed_for, text = None, None
        if sealed_for != purpose or not isinstance(text, str):
            log.warning("ignoring %s encrypted_content that this gateway cannot decrypt", purpose)
            return None
        return text

    def reveal(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items for translation: reasoning that arrives only encrypted gets its text back."""
        revealed = []
        for item in items:
            if (item.get("type") == "reasoning" and item.get("encrypted_content")
                    and not any(p.get("text") for p in item.get("content") or [])):
                text = self.open(item["encrypted_content"])
                if text is not None:
                    item = {**item, "content": [{"type": "reasoning_text", "text": text}]}
            revealed.append(item)
        return revealed
