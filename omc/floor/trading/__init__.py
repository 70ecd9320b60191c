"""Trading: the Guard, the order manager, the journal, P&L, the trading session (paper and
live, one strategy context shared with the backtester) and the kill switch."""
