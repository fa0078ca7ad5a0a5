"""Session store: where sessions are written (writer) and read (reader)."""
