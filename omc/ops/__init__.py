"""Operations: backups and restores of the database, metrics computed from the database at
scrape time and their HTTP endpoint. It may read every context's tables; only the outer
shell (cli, api) imports it."""
