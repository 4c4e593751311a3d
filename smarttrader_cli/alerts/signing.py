"""The generic webhook's signature: HMAC-SHA256 over "<timestamp>.<body>".

The header reads `t=<unix seconds>,v1=<hex digest>`. A receiver recomputes the digest with
the shared key over the timestamp it was given and the raw body, compares in constant
time, and rejects timestamps far from its clock (a replayed capture).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value `t=<timestamp>,v1=<signature>` for `body` (now, by default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={signature(secret, ts, body)}"


def verify(
    secret: str, header: str, body: bytes, tolerance_seconds: float = 300, now: float | None = None
) -> bool:
    """Whether `header` signs `body` under `secret`, with a timestamp within the tolerance."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, ts, body))
