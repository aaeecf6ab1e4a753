"""A compact digest of cell outputs, made on the event loop so it must stay cheap.

Text is cut at a configured size; binary payloads (images, PDFs) are kept as the
base64 the kernel sent and turned into blobs later by the store.
"""

from __future__ import annotations

import json
from typing import Any

BINARY_MIME = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "application/pdf"}
MAX_OUTPUTS = 200
MAX_TRACEBACK_LINES = 200


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters not stored]"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class OutputDigest:
    """Outputs of one execution, as they arrive on iopub."""

    def __init__(self, max_text: int, max_blob: int) -> None:
        self.max_text = max_text
        self.max_blob = max_blob
        self.items: list[dict[str, Any]] = []
        self.dropped = 0
        self._clear_pending = False
        self.changes = 0

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self.items.clear()
            self.changes += 1
            return
        if self._clear_pending:
            self.items.clear()
            self._clear_pending = False
        item = self._digest(msg_type, content)
        if item is None:
            return
        self.changes += 1
        if item["output_type"] == "stream" and self.items:
            last = self.items[-1]
            if last["output_type"] == "stream" and last["name"] == item["name"]:
                last["text"] = cut(last["text"] + item["text"], self.max_text)
                return
        if len(self.items) >= MAX_OUTPUTS:
            self.dropped += 1
            return
        self.items.append(item)

    def snapshot(self) -> list[dict[str, Any]]:
        out = [dict(i) for i in self.items]
        if self.dropped:
            out.append({"output_type": "note", "text": f"{self.dropped} more outputs not stored"})
        return out

    def _digest(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
        if msg_type == "stream":
            return {
                "output_type": "stream",
                "name": content.get("name", "stdout"),
                "text": cut(_text(content.get("text", "")), self.max_text),
            }
        if msg_type in ("execute_result", "display_data", "update_display_data"):
            item: dict[str, Any] = {
                "output_type": "display_data" if msg_type == "update_display_data" else msg_type,
                "data": {m: self._mime_value(m, v) for m, v in (content.get("data") or {}).items()},
            }
            if msg_type == "execute_result":
                item["execution_count"] = content.get("execution_count")
            return item
        if msg_type == "error":
            tb = [str(line) for line in (content.get("traceback") or [])][:MAX_TRACEBACK_LINES]
            return {
                "output_type": "error",
                "ename": str(content.get("ename", "")),
                "evalue": cut(str(content.get("evalue", "")), self.max_text),
                "traceback": [cut(line, self.max_text) for line in tb],
            }
        return None

    def _mime_value(self, mime: str, value: Any) -> Any:
        if mime in BINARY_MIME and isinstance(value, str):
            size = len(value) * 3 // 4
            if size > self.max_blob:
                return {"omitted": "larger than max_output_blob", "size": size}
            return {"b64": value}
        if isinstance(value, (str, list)):
            return cut(_text(value), self.max_text)
        encoded = json.dumps(value, default=str)
        if len(encoded) > self.max_text:
            return {"omitted": "larger than max_output_text", "size": len(encoded)}
        return value
