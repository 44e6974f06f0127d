"""Connecting a strategy: where the backend's client API is, its key, and code that uses them."""
