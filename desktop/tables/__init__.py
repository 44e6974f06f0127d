"""Tables configured by a column spec: the columns, the model over them, changed-cell ranges."""
