"""The image pool: work runs in another process, errors come back whole, and a full pool
refuses at once (ImagesBusy) instead of queueing without end, except for work that waits."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from bot import imaging
from bot.services.errors import ImagesBusy
from bot.services.imagework import ImageWork


async def test_work_runs_elsewhere_and_errors_come_back_whole() -> None:
    work = ImageWork(workers=1, queue_limit=1)
    try:
        assert await work.run(os.getpid) != os.getpid()
        with pytest.raises(imaging.ImageProblem) as problem:
            await work.run(imaging.make_thumbnail, b"not an image", 64)
        assert problem.value.code == "not_image" and problem.value.detail == {"size": 12}
    finally:
        work.close()


async def test_a_full_pool_refuses_and_waiting_work_still_gets_through() -> None:
    work = ImageWork(workers=1, queue_limit=1)
    try:
        busy = [asyncio.create_task(work.run(time.sleep, 0.5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(ImagesBusy):
            await work.run(time.sleep, 0)
        assert work.refused == 1
        await work.run(time.sleep, 0, wait=True)  # a job's own work waits its turn
        await asyncio.gather(*busy)
        assert work.outstanding == 0 and work.has_room()
    finally:
        work.close()


async def test_threads_instead_of_processes() -> None:
    work = ImageWork(workers=0, queue_limit=0)
    try:
        assert await work.run(os.getpid) == os.getpid()
    finally:
        work.close()
