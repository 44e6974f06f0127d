"""The colours FeedPool uses for states, log levels and price moves, as ``#rrggbb`` strings.

Mid-tone colours are chosen so each reads on both light and dark window backgrounds.
"""

from __future__ import annotations

STATE_COLOURS = {
    "connecting": "#3b82f6",  # blue: on its way
    "connected": "#16a34a",  # green: streaming
    "reconnecting": "#d97706",  # amber: lost, trying again
    "session_expired": "#dc2626",  # red: the broker ended the session; log in again
    "down": "#dc2626",  # red: gave up
    # The backend process, as the app sees it.
    "starting": "#3b82f6",
    "ready": "#16a34a",
    "restarting": "#d97706",
    "failed": "#dc2626",
}
UNKNOWN_STATE_COLOUR = "#6b7280"
#: A connection at its capacity: healthy, but the pool places new symbols elsewhere.
FULL_COLOUR = "#7c3aed"  # violet

LEVEL_COLOURS = {
    "DEBUG": "#6b7280",
    "WARNING": "#d97706",
    "ERROR": "#dc2626",
    "CRITICAL": "#b91c1c",
}

PRICE_UP = "#16a34a"
PRICE_DOWN = "#dc2626"

WATCH_STATUS_COLOURS = {"pending": "#6b7280", "subscribed": "#16a34a", "rejected": "#dc2626"}

SUMMARY_COLOURS = {"ok": "#16a34a", "warning": "#d97706", "error": "#dc2626"}


def state_colour(state: str) -> str:
    """The colour of a connection or backend state."""
    return STATE_COLOURS.get(state, UNKNOWN_STATE_COLOUR)


def utilisation_colour(fraction: float) -> str:
    """Green while there is room, amber from 80 % full, red from 95 %."""
    if fraction >= 0.95:
        return STATE_COLOURS["down"]
    if fraction >= 0.80:
        return STATE_COLOURS["reconnecting"]
    return STATE_COLOURS["connected"]


def sign_colour(number: float) -> str | None:
    """Green for a rise, red for a fall, the default colour for no change."""
    if number > 0:
        return PRICE_UP
    if number < 0:
        return PRICE_DOWN
    return None
