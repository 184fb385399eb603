"""Reading what a notebook run left in its cells."""

from __future__ import annotations

from typing import Any

__all__ = ["text_of"]


def text_of(cell: Any) -> str:
    """A code cell's printed text: its streams and its outputs' ``text/plain``, in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)
