"""Recognise credentials in string maps (lake.storage_options) and keep them out of output."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***redacted***"
# AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, AZURE_STORAGE_ACCOUNT_KEY,
# AZURE_CLIENT_SECRET, GOOGLE_SERVICE_ACCOUNT_KEY, ...: redacting a harmless key
# (a credentials file path) costs less than printing a real one.
_SECRET_KEY = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|KEY", re.IGNORECASE)
# Shorter values are left alone: replacing every "ab" in a report would hide more than it saves.
_MIN_SECRET_LENGTH = 4


def is_secret_key(name: str) -> bool:
    """True when a storage option's name says it holds a credential."""
    return bool(_SECRET_KEY.search(name))


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a string map with the values of secret keys replaced by REDACTED."""
    return {k: REDACTED if v and is_secret_key(k) else v for k, v in options.items()}


def secret_values(options: Mapping[str, Any]) -> list[str]:
    """The values of the secret keys of a string map."""
    return [str(v) for k, v in options.items() if v and is_secret_key(k)]


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret replaced by REDACTED."""
    known = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
    for secret in sorted(known, key=len, reverse=True):  # a longer secret may contain a shorter
        text = text.replace(secret, REDACTED)
    return text
