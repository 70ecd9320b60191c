"""A Lab session: one study run end to end (runner), its stored record (store), its files
(artifacts) and its report (report)."""
