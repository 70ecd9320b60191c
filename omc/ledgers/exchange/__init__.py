"""The Exchange ledger: CoinSpot prices, OHLCV candles from any CCXT exchange, candle files."""
