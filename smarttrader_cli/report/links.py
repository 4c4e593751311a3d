"""Where a wallet can be looked at outside st: its BirdEye profile and its Solscan account."""

from __future__ import annotations

from urllib.parse import quote


def birdeye_url(wallet: str) -> str:
    """The wallet's BirdEye profile page."""
    return f"https://birdeye.so/profile/{quote(wallet, safe='')}?chain=solana"


def solscan_url(wallet: str) -> str:
    """The wallet's Solscan account page."""
    return f"https://solscan.io/account/{quote(wallet, safe='')}"
