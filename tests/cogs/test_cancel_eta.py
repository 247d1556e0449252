"""Cancel and the estimated start of queued jobs (issue 23, item 3), end to end through real
discord.py against the fake Discord and the fake Nano Banana.

The bot here has one API slot (so two workers: one calling the API, one waiting for the slot
with its job ready); bob's two jobs take both, and the test holds the API's answers (a gate),
so alice's job really waits in the queue.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.cogs.conftest import Harness, make_harness
from tests.fakes.discord_server import FakeMessage, InteractionRecord
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until

CANCEL_ID = re.compile(r"nb:cancel:([0-9a-f-]{36})")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, tmp_path, max_concurrent_generations=1)


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


def cancel_button(message: FakeMessage) -> str | None:
    """The job id of the message's Cancel button, if it has one."""
    for custom_id in message.custom_ids():
        match = CANCEL_ID.fullmatch(custom_id)
        if match:
            return match[1]
    return None


async def fill_the_workers(harness: Harness) -> list[InteractionRecord]:
    """bob's two jobs: one calling the API (held at the gate), one waiting for the slot."""
    harness.api.gate = asyncio.Event()
    recs = [
        await harness.fake.slash("generate", {"prompt": f"bob {n}"}, user=harness.bob)
        for n in range(2)
    ]
    await harness.api.received(1)
    await until(lambda: harness.app.engine.running == 2, "both workers busy")
    return recs


async def queued_job(
    harness: Harness, prompt: str = "alice waits"
) -> tuple[InteractionRecord, str]:
    """alice's job, waiting in the queue: its message and its id (from its Cancel button)."""
    rec = await harness.fake.slash("generate", {"prompt": prompt}, user=harness.alice)
    message = await rec.wait_original(lambda m: cancel_button(m) is not None)
    job_id = cancel_button(message)
    assert job_id is not None
    await until(lambda: harness.app.engine.position(job_id) == 1, "alice's job queued")
    return rec, job_id


async def refunds_of(harness: Harness, job_id: str) -> int:
    return int(
        await harness.app.db.fetchval(
            "SELECT COUNT(*) FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'",
            (job_id,),
        )
    )


async def status_of_is(harness: Harness, job_id: str, status: str) -> bool:
    return await status_of(harness, job_id) == status


async def status_of(harness: Harness, job_id: str) -> str:
    row = await harness.app.engine.jobs.get(job_id)
    assert row is not None
    return row.status.value


def release_held(harness: Harness) -> None:
    """Answer the calls held at the API now; later calls are held again."""
    held, harness.api.gate = harness.api.gate, asyncio.Event()
    assert held is not None
    held.set()


async def finish_bobs(harness: Harness, recs: list[InteractionRecord]) -> None:
    assert harness.api.gate is not None
    harness.api.gate.set()
    for rec in recs:
        await rec.wait_original(has_image, timeout=15)
    await harness.settle()


async def test_owner_cancels_a_queued_job_and_is_refunded_once(harness: Harness) -> None:
    bobs = await fill_the_workers(harness)
    rec, job_id = await queued_job(harness)
    original = await rec.wait_original()
    assert "Queued (position" in original.content and not original.ephemeral
    assert await harness.balance(harness.alice) == 200
    # A double click: both presses reach the bot; the job is refunded exactly once.
    clicks = await asyncio.gather(
        *(harness.fake.click(original, label="Cancel", user=harness.alice) for _ in range(2))
    )
    shown = await rec.wait_original(lambda m: "cancelled this job" in m.content)
    assert "refunded 100 coins" in shown.content and cancel_button(shown) is None
    assert not shown.deleted and not shown.ephemeral
    # The other press is told privately that there is nothing left to cancel.
    await until(
        lambda: any(
            m.ephemeral and "already ended" in m.content for c in clicks for m in c.followups
        ),
        "the second press refused",
    )
    assert await harness.balance(harness.alice) == 300
    assert await status_of(harness, job_id) == "FAILED"
    assert await refunds_of(harness, job_id) == 1
    assert harness.app.engine.position(job_id) is None
    # Her slot is back: she can order again at once.
    assert harness.app.engine.active_jobs(harness.alice.id) == 0
    await finish_bobs(harness, bobs)
    # The cancelled job never called the API (bob's two did).
    assert [r.prompt for r in harness.api.requests] == ["bob 0", "bob 1"]
    await assert_ledger_consistent(harness.app.db)


async def test_a_moderator_cancels_a_members_queued_job(harness: Harness) -> None:
    bobs = await fill_the_workers(harness)
    rec, job_id = await queued_job(harness)
    click = await harness.fake.click(await rec.wait_original(), label="Cancel", user=harness.mod)
    told = await click.wait_followup()
    assert told.ephemeral and "The member was refunded 100 coins" in told.content
    shown = await rec.wait_original(lambda m: "A moderator cancelled this job" in m.content)
    assert cancel_button(shown) is None
    assert await harness.balance(harness.alice) == 300
    assert await refunds_of(harness, job_id) == 1
    await finish_bobs(harness, bobs)
    await assert_ledger_consistent(harness.app.db)


async def test_another_member_may_not_cancel(harness: Harness) -> None:
    bobs = await fill_the_workers(harness)
    rec, job_id = await queued_job(harness)
    before = await harness.counts()
    # owner2 is a plain member of this server (a moderator only in their own).
    click = await harness.fake.click(await rec.wait_original(), label="Cancel", user=harness.owner2)
    refused = await click.wait_message(lambda m: m.ephemeral)
    assert "Only the member who ordered this job" in refused.content
    assert await status_of(harness, job_id) == "PENDING"
    assert cancel_button(await rec.wait_original()) == job_id
    await finish_bobs(harness, bobs)
    # Her job runs and is charged as usual.
    await rec.wait_original(has_image, timeout=15)
    await harness.settle()
    assert await harness.balance(harness.alice) == 200
    assert await refunds_of(harness, job_id) == 0
    assert (await harness.counts())["jobs"] == before["jobs"]
    await assert_ledger_consistent(harness.app.db)


async def test_a_cancel_after_the_api_call_started_says_so(harness: Harness) -> None:
    bobs = await fill_the_workers(harness)
    rec, job_id = await queued_job(harness)
    stale = (await rec.wait_original()).snapshot()
    # bob's first job answers: his second takes the slot, alice's job takes the free worker.
    release_held(harness)
    await until(lambda: harness.app.engine.position(job_id) is None, "alice's job started")
    await until(lambda: status_of_is(harness, job_id, "PROCESSING"), "alice's job processing")
    # Her message drops the button once it runs; a member still looking at the old one
    # presses it anyway.
    click = await harness.fake.click(stale, label="Cancel", user=harness.alice, validate=False)
    answer = await click.wait_message(lambda m: m.ephemeral)
    assert "already started" in answer.content
    assert await status_of(harness, job_id) == "PROCESSING"
    assert harness.api.gate is not None
    harness.api.gate.set()
    for each in (*bobs, rec):
        await each.wait_original(has_image, timeout=15)
    await harness.settle()
    # Charged, not refunded by the cancel: it was made.
    assert await harness.balance(harness.alice) == 200
    assert await refunds_of(harness, job_id) == 0
    await assert_ledger_consistent(harness.app.db)


async def test_queued_message_shows_an_estimated_start_and_updates_it(harness: Harness) -> None:
    # One job first: the bot measures the API's latency from real calls.
    harness.api.latency = 0.2
    first = await harness.fake.slash("generate", {"prompt": "warm up"}, user=harness.alice)
    await first.wait_original(has_image, timeout=15)
    await harness.settle()
    assert harness.app.engine.latency(None) is not None
    bobs = await fill_the_workers(harness)
    rec = await harness.fake.slash("generate", {"prompt": "one"}, user=harness.owner2)
    later = await harness.fake.slash("generate", {"prompt": "two"}, user=harness.owner2)
    message = await later.wait_original(lambda m: "position 2" in m.content)
    # A Discord relative timestamp: each member's client shows "in N seconds" and counts down.
    assert re.search(r"should start <t:\d+:R>", message.content)
    assert cancel_button(message) is not None
    # The queue moves (bob's first answers): the message is edited with its new place.
    release_held(harness)
    moved = await later.wait_original(lambda m: "position 1" in m.content, timeout=15)
    assert re.search(r"should start <t:\d+:R>", moved.content)
    assert cancel_button(moved) is not None
    assert harness.api.gate is not None
    harness.api.gate.set()
    for each in (*bobs, rec, later):
        await each.wait_original(has_image, timeout=15)
    await harness.settle()
    await assert_ledger_consistent(harness.app.db)
