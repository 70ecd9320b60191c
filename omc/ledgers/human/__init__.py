"""The Human ledger: news and social sentiment (CryptoPanic, Reddit, RSS), scored and tagged."""
