"""The README's examples as a user's script, type-checked with ``mypy --strict`` by CI
(``.ci/run``) and by tests/typing/test_typing.py; never run. A change to sqlq's annotations
that makes correct user code an error, or loses a precise type, fails here."""
from __future__ import annotations

import asyncio
import datetime
from typing import List, Optional

from sqlq import MemoryQueue, Result, ResultGroup, SqliteQueue, TaskWrapper, crontab, group
from sqlq.contrib.asyncio import aget_result

queue = SqliteQueue('/tmp/demo.db')


@queue.task(retries=2, retry_delay=3)
def add(a: int, b: int) -> int:
    return a + b


r: Result[int] = add(1, 2)               # enqueues, returns a result handle
total: int = r(blocking=True)            # 3, once a consumer ran it
maybe: Optional[int] = r.get()           # None while not ready
later: Result[int] = add.schedule((3, 4), delay=5)
values: List[int] = add.map([(1, 2), (3, 4)]).get(blocking=True)
pending: List[Optional[int]] = add.map([(5, 6)]).get()
wrapper: TaskWrapper[[int, int], int] = add


@queue.periodic_task(crontab(minute='*/5'))
def tidy() -> None: ...


@queue.task(context=True)
def where(x: int, task: object = None) -> str:
    return '%s %s' % (x, task)


at: Result[str] = where(1)

pipeline = add.s(1, 2).then(add, 3).then(add, 4)
steps = queue.enqueue(pipeline)                   # a ResultGroup of the steps
members: ResultGroup[int] = add.map([(1, 1), (2, 2)])
group_result = queue.enqueue(group([add.s(1, 1), add.s(2, 2)]))


class Db:
    def __enter__(self) -> str:
        return 'conn'

    def __exit__(self, *exc: object) -> None: ...


@queue.context_task(Db(), as_argument=True)
def store(conn: str, row: int) -> str:
    return conn + str(row)


stored: Result[str] = store(5)                   # the context's value is not an argument


# -- asyncio --------------------------------------------------------------------------------
@queue.task(timeout=30)
async def fetch(url: str) -> bytes:
    await asyncio.sleep(0.1)
    return url.encode()


async def main() -> None:
    page: Result[bytes] = fetch('https://example.com')
    body: bytes = await page                          # woken by the completion notification
    again: bytes = await page.aget(timeout=10)
    other: Result[bytes] = await fetch.aenqueue('https://example.org')
    pages: List[bytes] = await fetch.map(['a', 'b']).aget()
    huey_style: bytes = await aget_result(other)
    print(body, again, pages, huey_style)


consumer = queue.create_consumer(workers=100, worker_type='asyncio')
memory = MemoryQueue('tests', immediate=True)
eta = datetime.datetime.now() + datetime.timedelta(seconds=10)
scheduled: Result[int] = add.schedule((1, 2), eta=eta, priority=5)
