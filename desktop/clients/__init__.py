"""The clients of the backend's WebSocket API: who is connected and what each holds."""
