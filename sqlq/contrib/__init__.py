"""Optional helpers built on sqlq's public API (huey's ``huey.contrib``): :mod:`.asyncio`."""
