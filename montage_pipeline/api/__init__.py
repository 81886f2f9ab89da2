"""The read API the platform's frontend uses (`/v2/weekly-montages`), with admin routes behind a token."""
