"""The durable ledger: an SQLite database holding every run, target and transition."""
