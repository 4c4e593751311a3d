"""Helius enhanced-transaction payloads: validation of one event and its bronze fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_SIGNATURE_LENGTH = 128


class EventError(ValueError):
    """An event that cannot be stored as a webhook event (the reason is the message)."""


@dataclass(frozen=True)
class EventFields:
    """What bronze.webhook_events extracts from one event besides the raw payload."""

    signature: str
    event_type: str | None
    source: str | None
    slot: int | None
    event_timestamp: int | None
    fee_payer: str | None
    payload: str


def signature_problem(event: Any) -> str | None:
    """Why an event has no usable `signature` (None when it has one)."""
    if not isinstance(event, dict):
        return "event is not a JSON object"
    sig = event.get("signature")
    if sig is None:
        return "event has no signature"
    if not isinstance(sig, str) or not sig.strip():
        return "signature is not a non-empty string"
    if len(sig) > MAX_SIGNATURE_LENGTH:
        return f"signature is longer than {MAX_SIGNATURE_LENGTH} characters"
    return None


def event_fields(value: bytes) -> EventFields:
    """Parse one stream message value into bronze fields; EventError says why it cannot be."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None
    problem = signature_problem(event)
    if problem:
        raise EventError(problem)
    return EventFields(
        signature=event["signature"].strip(),
        event_type=_opt_str(event, "type"),
        source=_opt_str(event, "source"),
        slot=_opt_int(event, "slot"),
        event_timestamp=_opt_int(event, "timestamp"),
        fee_payer=_opt_str(event, "feePayer"),
        payload=value.decode("utf-8"),
    )


def _opt_str(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or isinstance(value, str):
        return value
    raise EventError(f"{key} is not a string")


def _opt_int(event: dict[str, Any], key: str) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{key} is not an integer")
    if not -(2**63) <= value < 2**63:
        raise EventError(f"{key} is out of range")
    return value


# --- swap legs (silver.webhook_swaps) -----------------------------------------------

SOL_MINT = "So11111111111111111111111111111111111111112"
LAMPORTS_PER_SOL = 10**9


@dataclass(frozen=True)
class SwapLeg:
    """One side of a swap from one wallet's point of view."""

    wallet: str
    leg: int
    direction: str  # "buy" = received, "sell" = gave up
    token_address: str
    amount: float
    parsed_from: str  # "events.swap" or "transfers"


def swap_legs(event: dict[str, Any]) -> list[SwapLeg]:
    """The swap legs of an enhanced transaction: from `events.swap`, else from transfers."""
    if event.get("transactionError"):
        return []
    swap = (
        (event.get("events") or {}).get("swap") if isinstance(event.get("events"), dict) else None
    )
    legs = _legs_from_swap(swap, event.get("feePayer")) if isinstance(swap, dict) else []
    if legs:
        return legs
    return _legs_from_transfers(event)


def _legs_from_swap(swap: dict[str, Any], fee_payer: Any) -> list[SwapLeg]:
    sides: list[tuple[str, str | None, str, float]] = []  # direction, wallet, mint, amount
    for key, direction in (("nativeInput", "sell"), ("nativeOutput", "buy")):
        native = swap.get(key)
        if isinstance(native, dict) and native.get("amount") not in (None, "", "0"):
            lamports = _to_int(native.get("amount"))
            if lamports:
                sides.append(
                    (direction, native.get("account"), SOL_MINT, lamports / LAMPORTS_PER_SOL)
                )
    for key, direction in (("tokenInputs", "sell"), ("tokenOutputs", "buy")):
        for item in swap.get(key) or []:
            if not isinstance(item, dict) or not item.get("mint"):
                continue
            raw = item.get("rawTokenAmount") or {}
            amount = _to_int(raw.get("tokenAmount"))
            decimals = _to_int(raw.get("decimals")) or 0
            if amount:
                sides.append(
                    (direction, item.get("userAccount"), str(item["mint"]), amount / 10**decimals)
                )
    sides.sort(key=lambda s: 0 if s[0] == "sell" else 1)
    owner = next((w for _, w, _, _ in sides if isinstance(w, str) and w), None)
    owner = owner or (fee_payer if isinstance(fee_payer, str) else None)
    if owner is None:
        return []
    return [
        SwapLeg(
            wallet=wallet if isinstance(wallet, str) and wallet else owner,
            leg=i,
            direction=direction,
            token_address=mint,
            amount=amount,
            parsed_from="events.swap",
        )
        for i, (direction, wallet, mint, amount) in enumerate(sides)
    ]


def _legs_from_transfers(event: dict[str, Any]) -> list[SwapLeg]:
    """The fee payer's net balance change per token, when it both gave and received."""
    owner = event.get("feePayer")
    if not isinstance(owner, str) or not owner:
        return []
    net: dict[str, float] = {}
    for t in event.get("tokenTransfers") or []:
        if not isinstance(t, dict) or not t.get("mint"):
            continue
        amount = t.get("tokenAmount")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            continue
        sign = (t.get("toUserAccount") == owner) - (t.get("fromUserAccount") == owner)
        if sign:
            net[str(t["mint"])] = net.get(str(t["mint"]), 0.0) + sign * float(amount)
    for n in event.get("nativeTransfers") or []:
        if not isinstance(n, dict):
            continue
        lamports = n.get("amount")
        if isinstance(lamports, bool) or not isinstance(lamports, int | float):
            continue
        sign = (n.get("toUserAccount") == owner) - (n.get("fromUserAccount") == owner)
        if sign:
            net[SOL_MINT] = net.get(SOL_MINT, 0.0) + sign * lamports / LAMPORTS_PER_SOL
    gave = sorted((m, -v) for m, v in net.items() if v < 0)
    got = sorted((m, v) for m, v in net.items() if v > 0)
    if not gave or not got:  # a plain transfer, not an exchange
        return []
    legs = [("sell", m, v) for m, v in gave] + [("buy", m, v) for m, v in got]
    return [
        SwapLeg(owner, i, direction, mint, amount, "transfers")
        for i, (direction, mint, amount) in enumerate(legs)
    ]


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
