"""Where a wallet or token can be looked at outside st: BirdEye and Solscan pages."""

from __future__ import annotations

from urllib.parse import quote


def birdeye_url(wallet: str) -> str:
    """The wallet's BirdEye profile page."""
    return f"https://birdeye.so/profile/{quote(wallet, safe='')}?chain=solana"


def solscan_url(wallet: str) -> str:
    """The wallet's Solscan account page."""
    return f"https://solscan.io/account/{quote(wallet, safe='')}"


def token_url(token: str) -> str:
    """The token's BirdEye page."""
    return f"https://birdeye.so/token/{quote(token, safe='')}?chain=solana"
