"""What only the Redis backend has."""
