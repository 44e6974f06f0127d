"""The app's link to the backend: the process it runs, its bus and its WebSocket API."""
