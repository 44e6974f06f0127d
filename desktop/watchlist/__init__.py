"""The watchlist: its rows, file, imports, table and the pane that adds symbols to it."""
