"""The Hugging Face token: found once, passed only through a process environment, never shown.

Looked up in order: the ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``) environment variable, a
``.env`` file (python-dotenv; not loaded into this process's environment), and the Hub's own
token file (huggingface_hub). ``Redactor`` removes it from any text that reaches a log or file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
MASK = "***"


@dataclass(frozen=True)
class HfToken:
    """A token and where it came from (the source may be shown; the value never is)."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"HfToken(source={self.source!r}, value={MASK!r})"

    __str__ = __repr__


def find_hf_token(dotenv_path: str | Path | None = ".env") -> HfToken | None:
    """The first token found, or None."""
    for name in ENV_NAMES:
        value = os.environ.get(name, "").strip()
        if value:
            return HfToken(value, f"${name}")
    if dotenv_path is not None and Path(dotenv_path).is_file():
        from dotenv import dotenv_values

        values = dotenv_values(dotenv_path)
        for name in ENV_NAMES:
            value = (values.get(name) or "").strip()
            if value:
                return HfToken(value, f"{dotenv_path} ({name})")
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    value = (get_token() or "").strip()
    return HfToken(value, "the Hub's token file") if value else None


class Redactor:
    """Replaces every secret it knows in text with ``***``."""

    def __init__(self, *secrets: str | None) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def bytes(self, data: bytes) -> bytes:
        """Redact raw output (decoded leniently, so a split multi-byte character survives)."""
        if not self._secrets:
            return data
        return self(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
