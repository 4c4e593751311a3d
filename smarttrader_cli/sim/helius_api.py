"""Helius webhook management endpoints of the simulator, kept in memory."""

from __future__ import annotations

import uuid
from threading import Lock
from typing import Any

Reply = tuple[int, Any]

_REQUIRED = ("webhookURL", "transactionTypes", "accountAddresses", "webhookType")


class WebhookStore:
    """The webhooks of one simulated Helius account."""

    def __init__(self) -> None:
        self._hooks: dict[str, dict[str, Any]] = {}
        self._lock = Lock()
        self.edits = 0  # create + update calls that changed something (they cost credits)

    def list(self) -> Reply:
        """GET /v0/webhooks."""
        with self._lock:
            return 200, [dict(h) for h in self._hooks.values()]

    def get(self, webhook_id: str) -> Reply:
        """GET /v0/webhooks/{id}."""
        with self._lock:
            hook = self._hooks.get(webhook_id)
        return (200, dict(hook)) if hook else (404, {"error": "webhook not found"})

    def create(self, body: Any) -> Reply:
        """POST /v0/webhooks."""
        problem = _validate(body)
        if problem:
            return 400, {"error": problem}
        hook = _normalise(body)
        hook["webhookID"] = str(uuid.uuid4())
        hook["wallet"] = "SimHeliusAccount1111111111111111111111111111"
        with self._lock:
            self._hooks[hook["webhookID"]] = hook
            self.edits += 1
        return 200, dict(hook)

    def update(self, webhook_id: str, body: Any) -> Reply:
        """PUT /v0/webhooks/{id}: the body replaces the webhook's fields."""
        problem = _validate(body)
        if problem:
            return 400, {"error": problem}
        with self._lock:
            hook = self._hooks.get(webhook_id)
            if hook is None:
                return 404, {"error": "webhook not found"}
            hook.update(_normalise(body))
            self.edits += 1
            return 200, dict(hook)

    def delete(self, webhook_id: str) -> Reply:
        """DELETE /v0/webhooks/{id}."""
        with self._lock:
            if self._hooks.pop(webhook_id, None) is None:
                return 404, {"error": "webhook not found"}
        return 204, None


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    missing = [k for k in _REQUIRED if k not in body]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    if not isinstance(body["accountAddresses"], list) or not all(
        isinstance(a, str) for a in body["accountAddresses"]
    ):
        return "accountAddresses must be a list of strings"
    if len(body["accountAddresses"]) > 100_000:
        return "accountAddresses holds more than 100000 addresses"
    if not isinstance(body["transactionTypes"], list):
        return "transactionTypes must be a list"
    return None


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhookURL": body["webhookURL"],
        "transactionTypes": list(body["transactionTypes"]),
        "accountAddresses": list(body["accountAddresses"]),
        "webhookType": body["webhookType"],
        "authHeader": body.get("authHeader", ""),
        "txnStatus": body.get("txnStatus", "all"),
        "encoding": body.get("encoding", "jsonParsed"),
    }
