"""The compiled fast path (``sqlq._fastpath``), its pure twin and the switch between them."""
