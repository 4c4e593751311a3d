"""A token's security facts from BirdEye: `/defi/token_security` and a pool liquidity.

`/defi/token_security` documents no schema; its one example (a Solana token) is a flat
camelCase object in which any field may be null, and whose `…Percent` /
`…Percentage` fields are fractions 0–1, not percents (../shared/API_CONTRACTS.md,
"Token security"). No field is named mint authority: `ownerAddress` is read as the
account that may still mint (the nearest candidate, **unconfirmed** on a real capture),
and null there means none. `freezeAuthority` (an address) and `freezeable` (a flag) say
whether holders' accounts can be frozen; null means none too, as in the example of a
token on Jupiter's strict list.

Liquidity is not part of it: it comes from `/defi/multi_price?include_liquidity=true`
(`liquidity` of each price object, USD; up to 50 tokens a call), null when BirdEye
prices no pool of the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smarttrader_cli.sources.records import RecordError, number, price_object, text

TOKEN_SECURITY = "/defi/token_security"


@dataclass(frozen=True)
class SecurityFacts:
    """What BirdEye says about a token's safety; None where it said nothing (null)."""

    token_address: str
    known: bool  # BirdEye answered with facts (its `data` was not null or empty)
    mint_authority: str | None  # `ownerAddress` (unconfirmed as the mint authority)
    freeze_authority: str | None  # `freezeAuthority`
    freezeable: bool | None  # `freezeable`
    top10_holder_share: float | None  # `top10HolderPercent`, a fraction 0–1
    liquidity_usd: float | None = None  # from multi_price, not token_security
    mutable_metadata: bool | None = None
    token_2022: bool | None = None
    fake_token: bool | None = None


def parse_token_security(data: Any, token_address: str) -> SecurityFacts:
    """The facts of one `/defi/token_security` answer's `data` (None or {}: unknown)."""
    if data is None or data == {}:
        return SecurityFacts(token_address, False, None, None, None, None)
    if not isinstance(data, dict):
        raise RecordError(f"{token_address}: expected an object, got {type(data).__name__}")
    share = number(data, "top10HolderPercent", f"{token_address}.")
    if share is not None and not 0 <= share <= 1:
        # a percent where a fraction was documented: refuse rather than guess
        raise RecordError(
            f"{token_address}.top10HolderPercent: expected a fraction 0-1, got {share!r}"
        )
    return SecurityFacts(
        token_address,
        True,
        _address(data, "ownerAddress", token_address),
        _address(data, "freezeAuthority", token_address),
        _flag(data, "freezeable", token_address),
        share,
        mutable_metadata=_flag(data, "mutableMetadata", token_address),
        token_2022=_flag(data, "isToken2022", token_address),
        fake_token=_flag(data, "fakeToken", token_address),
    )


def parse_liquidity(obj: Any, token_address: str) -> float | None:
    """`liquidity` (USD) of a multi_price object; None when unpriced or not given."""
    obj = price_object(obj, token_address)
    if obj is None:
        return None
    value = number(obj, "liquidity", f"{token_address}.")
    if value is not None and value < 0:
        raise RecordError(f"{token_address}.liquidity: expected >= 0, got {value!r}")
    return value


def _address(data: dict[str, Any], key: str, token_address: str) -> str | None:
    value = text(data, key, f"{token_address}.")
    return value.strip() or None if value is not None else None


def _flag(data: dict[str, Any], key: str, token_address: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise RecordError(f"{token_address}.{key}: expected true, false or null, got {value!r}")
