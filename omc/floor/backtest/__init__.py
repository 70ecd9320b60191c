"""Backtesting: the exact event-driven engine, the compiled fast path, metrics, parameter
sweeps, walk-forward analysis and result files."""
