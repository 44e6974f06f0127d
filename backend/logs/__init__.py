"""The backend's logging: every record onto the bus, repeated faults once an interval, handshakes
without their credentials."""
