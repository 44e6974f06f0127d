"""Instruments: the master of every tradable symbol, where it comes from, and the symbol lists a
trader types or drops in."""
