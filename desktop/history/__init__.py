"""How the pool has done over the last minutes: tick rates, feed lag, shed ticks and events."""
