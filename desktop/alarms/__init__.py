"""Alarms: what has gone wrong with the backend, its connections or the broker's session, said
where the trader is looking until it is back."""
