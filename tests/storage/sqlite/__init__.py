"""What only the SQLite backend has: file handling, checkpoints, hand-off, wake-up channel."""
