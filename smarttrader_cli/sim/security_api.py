"""The simulator's `/defi/token_security`: planted facts, in the shape and mess of the real one.

Per token, seeded (`planted`): pump tokens often keep a mint authority (`ownerAddress`)
or a freeze authority, and their ten largest holders own most of the supply; healthy
tokens have neither authority and spread holders; the small token keeps its mint
authority half the time. USDC and USDT have a freeze authority, as the real ones do. As
in BirdEye's one example, fields are camelCase, shares are fractions 0-1, and any field
may be null: a fact is null on about one token in six (an authority then reads as none,
a share as unknown). One traded token's lookup always answers 500 (`lookup_fails`); the
server's `fault_rate` faults apply on top. An unknown mint answers `data: null`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarttrader_cli.sim.birdeye_api import BadRequest, Reply, error
from smarttrader_cli.sim.market import USDC, USDT, Market, SimToken, address, rng_for

NULL_SHARE = 0.16  # chance that a fact of a token is served as null


def failing_token(market: Market) -> str | None:
    """The traded token whose security lookup always fails (None without traded tokens)."""
    traded = [t for t in market.tokens if t.kind != "quote"]
    if not traded:
        return None
    return rng_for(market.seed, "security-fails").choice(traded).address


def planted(market: Market, token: SimToken) -> dict[str, Any]:
    """What the simulator says about `token`: the real facts, before nulls hide some."""
    rng = rng_for(market.seed, "security", token.index)
    mint = freeze = False
    if token.kind == "pump":
        mint, freeze = rng.random() < 0.5, rng.random() < 0.35
        top10 = rng.uniform(0.55, 0.95)
    elif token.kind == "small":
        mint, top10 = rng.random() < 0.5, rng.uniform(0.3, 0.6)
    elif token.address in (USDC, USDT):
        mint = freeze = True
        top10 = rng.uniform(0.35, 0.6)
    else:
        top10 = rng.uniform(0.12, 0.45)
    return {
        "mint_authority": address(market.seed, "mint-authority", token.index) if mint else None,
        "freeze_authority": (
            address(market.seed, "freeze-authority", token.index) if freeze else None
        ),
        "top10_holder_share": round(top10, 6),
        "lookup_fails": token.address == failing_token(market),
    }


def security_object(market: Market, token: SimToken) -> dict[str, Any]:
    """The `data` object of `/defi/token_security` for a token, with some facts null."""
    facts = planted(market, token)
    rng = rng_for(market.seed, "security-nulls", token.index)
    supply = token.supply or 1e9
    creator = address(market.seed, "creator", token.index)
    top10 = facts["top10_holder_share"]
    obj: dict[str, Any] = {
        "creatorAddress": creator,
        "creatorOwnerAddress": None,
        "ownerAddress": facts["mint_authority"],
        "ownerOfOwnerAddress": None,
        "creationTx": None,
        "creationTime": market.start_time - 86_400 * (1 + token.index),
        "creationSlot": 165_000_000 + token.index,
        "mintTx": None,
        "mintTime": None,
        "mintSlot": None,
        "creatorBalance": round(supply * 0.001, 6),
        "creatorPercentage": 0.001,
        "ownerBalance": None,
        "ownerPercentage": None,
        "metaplexUpdateAuthority": creator,
        "metaplexUpdateAuthorityBalance": None,
        "metaplexUpdateAuthorityPercent": None,
        "mutableMetadata": token.kind == "pump",
        "top10HolderBalance": round(supply * top10, 6),
        "top10HolderPercent": top10,
        "top10UserBalance": round(supply * top10 * 0.8, 6),
        "top10UserPercent": round(top10 * 0.8, 6),
        "isTrueToken": None,
        "fakeToken": None,
        "totalSupply": supply,
        "preMarketHolder": [],
        "lockInfo": None,
        "freezeable": True if facts["freeze_authority"] else None,
        "freezeAuthority": facts["freeze_authority"],
        "transferFeeEnable": None,
        "transferFeeData": None,
        "isToken2022": False,
        "nonTransferable": None,
        "jupStrictList": token.kind == "healthy" or token.kind == "quote",
    }
    # A null authority reads as none: hiding a planted one would make a safe token of it.
    for field in ("top10HolderPercent", "top10HolderBalance", "mutableMetadata", "isToken2022"):
        if rng.random() < NULL_SHARE:
            obj[field] = None
    if not facts["freeze_authority"] and rng.random() < 0.5:
        obj["freezeable"] = False
    return obj


def token_security(market: Market, params: Mapping[str, Any]) -> Reply:
    """GET /defi/token_security?address=: the object, null for an unknown mint."""
    mint = params.get("address")
    if not mint:
        raise BadRequest("address is required")
    token = market.by_address.get(str(mint))
    if token is None:
        return 200, {"success": True, "data": None}
    if planted(market, token)["lookup_fails"]:
        return error(500, "Internal server error")
    return 200, {"success": True, "data": security_object(market, token)}


def security_truth(market: Market) -> list[dict[str, Any]]:
    """Every token's planted facts, as `st sim truth --security` prints them."""
    return [
        {"token_address": t.address, "symbol": t.symbol, "kind": t.kind, **planted(market, t),
         "liquidity_usd": t.metrics.get("liquidity")}
        for t in market.tokens
    ]  # fmt: skip
