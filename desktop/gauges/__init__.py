"""The gauges: one per pooled connection and one for the whole pool."""
