"""The collector framework shared by all four ledgers: fetch, validate, upsert, record."""
