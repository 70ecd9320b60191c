"""The Catalyst ledger: events that move prices (SEC filings, CoinSpot announcements) and alerts."""
