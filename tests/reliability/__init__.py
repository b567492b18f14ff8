"""Guarantees: delivery, nothing lost (kill -9, many processes), bad input kept visible."""
