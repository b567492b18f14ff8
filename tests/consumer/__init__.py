"""The worker, the embedded consumer, ``sqlq consume`` processes and the consumer's logging."""
