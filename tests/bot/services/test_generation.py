"""GenerationService end to end over the real client, fake API, SQLite and a local store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.imaging import inspect_image
from bot.nanobanana import InputImage, NanobananaClient
from bot.services.errors import (
    InvalidInput,
    JobNotFound,
    NotEnoughCoins,
    QueueFull,
    ShuttingDown,
    TooManyJobs,
)
from bot.services.generation import GenerationRequest, GenerationService
from bot.services.members import Payer
from bot.services.permissions import Actor, Identity
from storage.images import ImageRepository
from storage.jobs import JobRepository, JobStatus
from storage.leases import LeaseRepository
from storage.models import ImageStatus, User
from storage.objects import LocalObjectStore, ObjectStore
from storage.users import UserRepository
from tests.bot.services.conftest import (
    RecordingListener,
    coins_of,
    image_rows,
    job_row,
    ledger_of,
    payer_for,
    unfinished_jobs,
)
from tests.fakes.flaky_store import FlakyStore
from tests.fakes.nanobanana_server import Behaviour, FakeNanobanana, Mode, render_png
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until


def make_service(
    images: ImageRepository,
    store: ObjectStore,
    client: NanobananaClient,
    *,
    max_concurrent: int = 2,
    max_jobs_per_user: int = 2,
    **options: Any,
) -> GenerationService:
    """A service over the real client; `options` go to GenerationService (catalog...)."""
    settings: dict[str, Any] = {
        "cost": 100, "max_prompt_chars": 50, "retry_seconds": 0.5, **options,
    }  # fmt: skip
    return GenerationService(
        images=images, store=store, generator=client, max_concurrent=max_concurrent,
        max_jobs_per_user=max_jobs_per_user, **settings,
    )  # fmt: skip


@pytest.fixture
async def service(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient
) -> AsyncIterator[GenerationService]:
    generation = make_service(images, local_store, client)
    await generation.start()
    yield generation
    await generation.close(deadline=5)


@pytest.fixture
async def user(users: UserRepository) -> Payer:
    return await payer_for(users.db, 1, 300)


async def test_happy_path_stores_image_thumbnail_and_row(
    service: GenerationService, user: Payer, users: UserRepository, local_store: LocalObjectStore,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    listener = RecordingListener()
    job = await service.submit(user, GenerationRequest("a banana", "16:9"), listener)
    await listener.done()
    assert listener.result is not None, listener.events
    image = listener.result.image
    assert image.status is ImageStatus.COMPLETED and image.coins_used == 100
    assert image.metadata["width"] == 256 and image.metadata["height"] == 144
    assert image.metadata["model"] == "gemini-nano-banana-2.1"  # the client's default
    assert image.storage_key and image.thumbnail_key
    stored = await local_store.get(image.storage_key)
    assert stored == listener.result.data
    thumb = inspect_image(await local_store.get(image.thumbnail_key), max_bytes=10**7)
    assert thumb.format == "WEBP" and max(thumb.width, thumb.height) <= 256
    assert listener.result.balance == 200 and job.balance == 200
    assert [e[0] for e in listener.events] == ["queued", "started", "completed"]
    assert fake_api.requests[0].aspect_ratio == "16:9"
    assert await coins_of(users.db, user) == 200
    # The job is COMPLETED with the image it made; the image row shares its id.
    row = await job_row(users.db, job.id)
    assert row.status is JobStatus.COMPLETED and row.kind == "image" and row.cost == 100
    assert row.result["image_ids"] == [image.id] and image.id == job.id
    assert await ledger_of(users.db, job.id) == [("GENERATION", -100)]
    await assert_ledger_consistent(users.db)


@pytest.mark.parametrize(
    ("behaviour", "key"),
    [
        (Behaviour(Mode.BLOCK_PROMPT, reason="SAFETY"), "block.prompt.SAFETY"),
        (Behaviour(Mode.BLOCK_OUTPUT, reason="IMAGE_SAFETY"), "block.output.IMAGE_SAFETY"),
        (Mode.TEXT_ONLY, "reason.no_image"),
        (Mode.BAD_REQUEST, "reason.invalid"),
        (Mode.FORBIDDEN, "reason.auth"),
        (Mode.MALFORMED_JSON, "reason.unavailable"),
        (Mode.TRUNCATED_BASE64, "reason.unavailable"),
    ],
)
async def test_failures_refund_exactly_once(
    service: GenerationService, user: Payer, users: UserRepository, images: ImageRepository,
    fake_api: FakeNanobanana, behaviour: Mode | Behaviour, key: str,
) -> None:  # fmt: skip
    fake_api.default = behaviour
    listener = RecordingListener()
    job = await service.submit(user, GenerationRequest("a banana"), listener)
    await listener.done()
    assert listener.failure is not None and listener.failure.key == key
    assert listener.failure.refunded == 100 and listener.failure.balance == 300
    # FAILED, charged and refunded exactly once, with the reason the member was told; no
    # image row is left of it.
    failed = await job_row(users.db, job.id)
    assert failed.status is JobStatus.FAILED and failed.result["key"] == key
    assert await ledger_of(users.db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
    assert await images.get(job.id) is None
    assert await coins_of(users.db, user) == 300
    assert service.active_jobs(user.user_id) == 0
    await assert_ledger_consistent(users.db)


async def test_persistent_503_fails_after_retries(
    service: GenerationService, user: Payer, fake_api: FakeNanobanana
) -> None:
    fake_api.default = Mode.UNAVAILABLE
    listener = RecordingListener()
    await service.submit(user, GenerationRequest("x"), listener)
    await listener.done()
    assert listener.failure is not None and listener.failure.key == "reason.unavailable"
    assert len(fake_api.requests) == 2  # max_attempts


async def test_storage_failure_refunds_and_leaves_no_objects(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, user: Payer,
) -> None:  # fmt: skip
    flaky = FlakyStore(local_store, fail_put=lambda key: key.startswith("thumbnails/"))
    service = make_service(images, flaky, client)
    await service.start()
    try:
        listener = RecordingListener()
        job = await service.submit(user, GenerationRequest("x"), listener)
        await listener.done()
    finally:
        await service.close(deadline=5)
    assert listener.failure is not None and listener.failure.key == "reason.storage"
    assert await local_store.list() == []  # the image written before the failure is gone
    assert (await job_row(users.db, job.id)).status is JobStatus.FAILED
    assert await ledger_of(users.db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
    assert await images.get(job.id) is None and await coins_of(users.db, user) == 300
    await assert_ledger_consistent(users.db)


async def test_inputs_are_sent_and_stored_for_rerolls(
    service: GenerationService, user: Payer, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    png = render_png(64, 64)
    listener = RecordingListener()
    request = GenerationRequest("make it blue", inputs=(InputImage(png, "image/png"),))
    await service.submit(user, request, listener)
    await listener.done()
    assert fake_api.requests[0].images == [("image/png", png)]
    assert listener.result is not None
    image = listener.result.image
    assert len(image.metadata["input_keys"]) == 1
    again = await service.requests.inputs_of(image)
    assert again == (InputImage(png, "image/png"),)
    assert (await service.requests.image_as_input(image)).data == listener.result.data
    # A Reroll of it sends the same input again.
    reroll = await service.reroll_request(image)
    assert reroll.inputs == (InputImage(png, "image/png"),) and reroll.prompt == "make it blue"


@pytest.mark.parametrize(
    ("prompt", "ratio", "key"),
    [("   ", "1:1", "prompt.empty"), ("x" * 51, "1:1", "prompt.too_long"),
     ("ok", "7:3", "aspect.unsupported")],
)  # fmt: skip
async def test_bad_input_is_refused_without_charging(
    service: GenerationService, user: Payer, users: UserRepository, images: ImageRepository,
    prompt: str, ratio: str, key: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidInput) as info:
        await service.submit(user, GenerationRequest(prompt, ratio))
    assert info.value.key == key
    assert await coins_of(users.db, user) == 300
    assert await images.count_by_user(user.user_id, status=None) == 0
    assert await JobRepository(users.db).list_unfinished() == []
    assert await users.db.fetchval("SELECT COUNT(*) FROM jobs") == 0
    assert service.active_jobs(user.user_id) == 0


async def test_insufficient_coins(
    service: GenerationService, users: UserRepository, images: ImageRepository
) -> None:
    poor = await payer_for(users.db, 2, 99)
    with pytest.raises(NotEnoughCoins) as info:
        await service.submit(poor, GenerationRequest("x"))
    assert (info.value.balance, info.value.cost) == (99, 100)
    assert await images.count_by_user(poor.user_id, status=None) == 0
    assert await users.db.fetchval("SELECT COUNT(*) FROM jobs") == 0
    assert service.active_jobs(poor.user_id) == 0


async def test_per_user_limit_counts_queued_and_running(
    service: GenerationService, users: UserRepository, fake_api: FakeNanobanana
) -> None:
    rich = await payer_for(users.db, 3, 10_000)
    fake_api.latency = 0.3
    listeners = [RecordingListener() for _ in range(2)]
    for listener in listeners:
        await service.submit(rich, GenerationRequest("x"), listener)
    with pytest.raises(TooManyJobs):
        await service.submit(rich, GenerationRequest("x"))
    assert await coins_of(users.db, rich) == 9_800
    for listener in listeners:
        await listener.done()
    await service.submit(rich, GenerationRequest("x"))  # slots are free again


async def test_concurrent_submissions_of_one_user_respect_the_limit(
    service: GenerationService, users: UserRepository, fake_api: FakeNanobanana
) -> None:
    rich = await payer_for(users.db, 4, 10_000)
    fake_api.latency = 0.2
    outcomes = await asyncio.gather(
        *(service.submit(rich, GenerationRequest("x")) for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 2
    assert all(isinstance(o, TooManyJobs) for o in outcomes if isinstance(o, BaseException))
    assert await coins_of(users.db, rich) == 9_800


async def test_workers_bound_concurrent_api_calls(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.latency = 0.2
    service = make_service(images, local_store, client, max_concurrent=2, max_jobs_per_user=10)
    await service.start()
    try:
        owners = [await payer_for(users.db, 100 + n, 1000) for n in range(3)]
        listeners = [RecordingListener() for _ in range(6)]
        for n, listener in enumerate(listeners):
            await service.submit(owners[n % 3], GenerationRequest("x"), listener)
        for listener in listeners:
            await listener.done()
    finally:
        await service.close(deadline=5)
    # Peak number of requests the API was serving at once, from the fake's own timings.
    edges = sorted(
        [(r.received_at, 1) for r in fake_api.requests]
        + [(r.received_at + r.handler_seconds, -1) for r in fake_api.requests]
    )
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2
    assert all(listener.result is not None for listener in listeners)
    # Waiting jobs were told their position, and it went down as the queue moved.
    positions = [int(str(e[1])) for e in listeners[-1].events if e[0] == "queued"]
    # Four workers (twice the API slots) took the first four jobs; two waited.
    assert positions[0] == 6 - service.worker_count
    assert positions == sorted(positions, reverse=True)


async def test_close_refunds_queued_jobs_and_refuses_new_ones(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.latency = 0.3
    service = make_service(images, local_store, client, max_concurrent=1, max_jobs_per_user=5)
    await service.start()
    owner = await payer_for(users.db, 7, 1000)
    listeners = [RecordingListener() for _ in range(4)]
    prompts = [f"job {n}" for n in range(4)]
    for listener, prompt in zip(listeners, prompts, strict=True):
        await service.submit(owner, GenerationRequest(prompt), listener)
    # One job calls the API (which one is up to the workers and the database); the others
    # wait for the one slot or in the queue.
    await fake_api.received(1)
    await service.close(deadline=5)
    done = [p for p, lis in zip(prompts, listeners, strict=True) if lis.result is not None]
    # The job calling the API finishes; the one whose worker waits for the slot and the
    # queued ones (none of which called the API) are refunded.
    assert done == [fake_api.requests[0].prompt] and len(fake_api.requests) == 1
    refused = [lis.failure for lis in listeners if lis.result is None]
    assert [f.key for f in refused if f is not None] == ["reason.shutdown"] * 3
    assert await coins_of(users.db, owner) == 900
    with pytest.raises(ShuttingDown):
        await service.submit(owner, GenerationRequest("x"))
    assert await unfinished_jobs(users.db) == []
    # One image row (the finished job's); the three refunded jobs left none, each refunded once.
    assert await image_rows(users.db) == 1
    refunds = await users.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND' AND job_id IS NOT NULL"
    )
    assert refunds == 3
    await assert_ledger_consistent(users.db)


@pytest.mark.parametrize("lend", [True, False], ids=["lend", "no-lend"])
async def test_a_slot_passes_to_the_next_waiting_job_or_back_to_the_database(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana, lend: bool,
) -> None:  # fmt: skip
    """With lending (one process), a slot given back while another job of the process waits
    goes to it without a database claim; without (PostgreSQL's default), every API call
    claims its slot. Either way one call at a time, and no slot stays held once idle."""
    fake_api.latency = 0.1
    service = make_service(images, local_store, client, max_concurrent=1,
                           max_jobs_per_user=5, lend_slots=lend)  # fmt: skip
    await service.start()
    try:
        owner = await payer_for(users.db, 11, 1000)
        listeners = [RecordingListener() for _ in range(4)]
        for listener in listeners:
            await service.submit(owner, GenerationRequest("x"), listener)
        for listener in listeners:
            await listener.done(timeout=20)
            assert listener.result is not None
        assert fake_api.max_in_flight == 1
        assert service.slot_claims + service.slot_handovers == 4
        if lend:
            assert service.slot_handovers >= 2 and service.slot_claims <= 2
        else:
            assert service.slot_handovers == 0 and service.slot_claims == 4
        await service.wait_idle()
        # An untaken spare goes back after SPARE_SLOT_SECONDS.
        await until(lambda: _none_in_use(service), "every slot back in the database")
    finally:
        await service.close(deadline=5)
    await assert_ledger_consistent(users.db)


async def test_close_gives_back_a_spare_slot_and_refunds_its_waiter(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """Stopping while a job waits for the one slot: the job calling the API finishes, the
    waiting one is refunded (it never called the API), and no slot stays held."""
    fake_api.latency = 0.3
    service = make_service(images, local_store, client, max_concurrent=1,
                           max_jobs_per_user=5, lend_slots=True)  # fmt: skip
    await service.start()
    owner = await payer_for(users.db, 12, 1000)
    first, second = RecordingListener(), RecordingListener()
    await service.submit(owner, GenerationRequest("x"), first)
    await service.submit(owner, GenerationRequest("y"), second)
    await fake_api.received(1)  # one calls the API, the other waits for the slot
    await service.close(deadline=5)
    # Which of the two took the slot first is up to the database; the other waited.
    done = [lis for lis in (first, second) if lis.result is not None]
    refused = [lis for lis in (first, second) if lis.failure is not None]
    assert len(done) == 1 and len(refused) == 1 and len(fake_api.requests) == 1
    assert refused[0].failure.key == "reason.shutdown"  # type: ignore[union-attr]
    assert await LeaseRepository(users.db).slots_in_use() == 0
    assert await coins_of(users.db, owner) == 900
    await assert_ledger_consistent(users.db)


async def test_close_past_deadline_refunds_running_job(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.default = Mode.HANG
    service = make_service(images, local_store, client, max_concurrent=1)
    await service.start()
    owner = await payer_for(users.db, 8, 300)
    listener = RecordingListener()
    job = await service.submit(owner, GenerationRequest("x"), listener)
    await fake_api.received(1)  # running: the API holds it
    await service.close(deadline=0.2)
    failed = await job_row(users.db, job.id)
    assert failed.status is JobStatus.FAILED and failed.result["key"] == "reason.shutdown"
    assert await ledger_of(users.db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
    assert listener.failure is not None and listener.failure.key == "reason.shutdown"
    assert await images.get(job.id) is None
    assert await coins_of(users.db, owner) == 300
    await assert_ledger_consistent(users.db)


async def test_recover_refunds_crash_leftovers(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository,
) -> None:  # fmt: skip
    """A crashed run's jobs (no lease owner: the process is gone), one PENDING and one
    PROCESSING, are failed and refunded exactly once by the next start."""
    owner = await payer_for(users.db, 9, 300)
    jobs = JobRepository(users.db)
    pending = (await jobs.reserve(
        kind="image", user_id=owner.user_id, wallet_id=owner.wallet_id, cost=100,
        request={"prompt": "a"},
    )).job  # fmt: skip
    running = (await jobs.reserve(
        kind="image", user_id=owner.user_id, wallet_id=owner.wallet_id, cost=100,
        request={"prompt": "b"}, lease_owner="a-crashed-process",
    )).job  # fmt: skip
    await users.db.execute("UPDATE jobs SET status = 'PROCESSING' WHERE id = ?", (running.id,))
    assert await coins_of(users.db, owner) == 100
    service = make_service(images, local_store, client)
    refunds = await service.recover()
    assert {r.job.id for r in refunds} == {pending.id, running.id}
    assert all(r.refunded == 100 for r in refunds)
    assert await service.recover() == []
    assert await coins_of(users.db, owner) == 300
    for job in (pending, running):
        row = await job_row(users.db, job.id)
        assert row.status is JobStatus.FAILED and row.result["key"] == "reason.shutdown"
        assert await ledger_of(users.db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
    assert await unfinished_jobs(users.db) == [] and await image_rows(users.db) == 0
    await assert_ledger_consistent(users.db)


async def test_disabled_service_refuses_before_charging(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, user: Payer,
) -> None:  # fmt: skip
    service = GenerationService(
        images=images, store=local_store, generator=client, cost=100, max_concurrent=1,
        max_jobs_per_user=1, max_prompt_chars=10, enabled=False,
    )  # fmt: skip
    await service.start()
    with pytest.raises(InvalidInput) as info:
        await service.submit(user, GenerationRequest("x"))
    assert info.value.key == "gen.not_configured"
    await service.close()


async def test_full_queue_refuses_without_charging(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.latency = 0.5
    service = GenerationService(
        images=images, store=local_store, generator=client, cost=10, max_concurrent=1,
        max_jobs_per_user=5, max_prompt_chars=50, queue_size=2,
    )  # fmt: skip
    await service.start()
    try:
        owners = [await payer_for(users.db, 500 + n, 100, cost=10) for n in range(4)]
        for owner in owners[:3]:
            await service.submit(owner, GenerationRequest("x"))  # 1 running + 2 waiting
        with pytest.raises(QueueFull):
            await service.submit(owners[3], GenerationRequest("x"))
        assert await coins_of(users.db, owners[3]) == 100
    finally:
        await service.close(deadline=5)


async def _none_in_use(service: GenerationService) -> bool:
    return await service.engine.leases.slots_in_use() == 0


async def test_job_of_shows_only_a_members_own_jobs_and_reads_the_reason_back(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    users: UserRepository, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """The API's job resource: a member sees their own image jobs (acting in the job's server,
    or in none), with the images they made and, for a failed one, the reason they were told,
    read back from the job's row by a process that never ran it. Anyone else's job, a job of
    another kind and an id that never was are all "not found"."""
    guild, elsewhere = 9001, 9002
    payer = await payer_for(users.db, 21, 300, guild_id=guild)
    user = await users.get(payer.user_id)
    assert user is not None

    def acting(where: int | None, who: User | None = user) -> Actor:
        discord_id = who.discord_id if who is not None and who.discord_id else 0
        return Actor(Identity(discord_id, "member", guild_id=where), who, False)

    first = make_service(images, local_store, client)
    await first.start()
    try:
        fake_api.default = Behaviour(Mode.BLOCK_PROMPT, reason="SAFETY")
        blocked = RecordingListener()
        failed = await first.submit(payer, GenerationRequest("a banana"), blocked)
        await blocked.done()
        fake_api.default = Mode.OK
        made = RecordingListener()
        good = await first.submit(payer, GenerationRequest("a banana"), made)
        await made.done()
        assert made.result is not None
        view = await first.job_of(acting(guild), good.id)
        assert view.job.status is JobStatus.COMPLETED and view.reason is None
        assert [i.id for i in view.images] == [good.id] and view.position is None
    finally:
        await first.close(deadline=5)
    # Another process (or this one restarted) knows nothing of these jobs but their rows.
    second = make_service(images, local_store, client)
    view = await second.job_of(acting(guild), f"  {failed.id.upper()} ")
    assert view.job.status is JobStatus.FAILED and view.images == ()
    assert view.reason == ("block.prompt.SAFETY", {})
    assert (await second.job_of(acting(None), failed.id)).job.id == failed.id  # from a DM
    # An image deleted since is left out; the job is still there.
    await images.delete(good.id)
    assert (await second.job_of(acting(guild), good.id)).images == ()
    # Not theirs to see, or nothing to see: not found, whatever the reason.
    stranger = await users.create(discord_id=22)
    caption = (await JobRepository(users.db).reserve(
        kind="caption", user_id=payer.user_id, wallet_id=payer.wallet_id, cost=0,
        guild_id=guild,
    )).job  # fmt: skip
    for actor, job_id in [
        (acting(guild, stranger), failed.id),
        (acting(guild, stranger), good.id),
        (acting(elsewhere), failed.id),  # their own job, asked from another server
        (acting(guild, None), failed.id),  # someone with no account
        (acting(guild), caption.id),
        (acting(guild), "0" * 8 + failed.id[8:]),
        (acting(guild), "not-a-job"),
    ]:
        with pytest.raises(JobNotFound):
            await second.job_of(actor, job_id)
