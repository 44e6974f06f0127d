"""The settings dialog and the settings file it edits."""
