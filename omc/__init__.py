"""Oh My Coins: from raw market data to a live strategy in one system."""

__version__ = "0.1.0"
