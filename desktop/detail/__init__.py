"""The selected watchlist symbol in detail: its price since the app started, and its book."""
