"""The task layer (the huey-compatible API): enqueue, execute, pipelines, results, signals,
locks, periodic tasks, crontab and serialization."""
