"""The storage contract on every backend, batch claims and the hand-off."""
