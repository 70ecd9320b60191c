"""The Floor: strategies, backtesting, paper and live trading behind the Guard."""
