"""The backend process: its settings, its parts started and stopped together, its event loop,
and the headless runner."""
