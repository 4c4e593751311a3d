"""st, the Smart Trader toolkit."""

__version__ = "0.1.0"
