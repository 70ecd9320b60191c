"""The four ledgers: collection of Exchange, Glass, Human and Catalyst data into one database."""
