"""The watchlist: its rows in the trader's priority order, file, imports, filter, table, the pane
that adds symbols to it, and the watches that ask again for rows waiting for room and mark stale
rows."""
