"""Where FeedPool's bundled files are, in a source checkout and in the packaged app alike."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: beside the packages, or inside the PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parents[2]
    return base / "resources"


def resource_path(*parts: str) -> Path:
    """A bundled file, e.g. ``resource_path("instruments.csv")``."""
    return resources_dir().joinpath(*parts)
