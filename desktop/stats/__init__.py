"""The bus's monitoring payloads as typed values."""
