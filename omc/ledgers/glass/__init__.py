"""The Glass ledger: on-chain and DeFi fundamentals (DeFiLlama, Ethereum JSON-RPC)."""
