"""Counts in words, for log lines and the app's labels alike."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``1 connection``, ``3 connections``, ``1,000 symbols``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
