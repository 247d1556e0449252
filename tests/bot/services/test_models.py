"""ModelService over a real database (SQLite and PostgreSQL) and the fake API: the models
list shared by every process, retirements learnt once for the whole deployment, and money
never taken for a model that is gone."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.nanobanana import NanobananaClient
from bot.nanobanana.profiles import (
    LINEUP,
    NANO_BANANA_2,
    NANO_BANANA_2_1,
    NANO_BANANA_PRO,
)
from bot.services.catalog import ModelSettings
from bot.services.errors import InvalidInput
from bot.services.events import EventBus, ModelNotice
from bot.services.generation import GenerationRequest, GenerationService
from bot.services.members import Payer
from bot.services.models import ModelService
from bot.services.processes import ProcessLease
from storage.db import Database
from storage.images import ImageRepository
from storage.jobs import JobStatus
from storage.leases import LeaseRepository
from storage.model_states import ModelStateRepository
from storage.objects import LocalObjectStore
from tests.bot.services.conftest import RecordingListener, coins_of, ledger_of, payer_for
from tests.fakes.nanobanana_server import FakeModel, FakeNanobanana
from tests.storage.helpers import assert_ledger_consistent


@dataclass
class Process:
    """One bot process's model and generation services over a shared database."""

    models: ModelService
    generation: GenerationService
    events: EventBus

    def notices(self, kind: str = "retired") -> list[ModelNotice]:
        return [e for e in self.events.history if isinstance(e, ModelNotice) and e.kind == kind]


@contextlib.asynccontextmanager
async def process(
    db: Database,
    client: NanobananaClient,
    store: LocalObjectStore,
    settings: ModelSettings,
) -> AsyncIterator[Process]:
    events = EventBus()
    lease = ProcessLease(LeaseRepository(db), lease_seconds=30)
    await lease.start()
    models = ModelService(
        settings=settings,
        lineup=LINEUP,
        states=ModelStateRepository(db),
        lister=client,
        events=events,
        process=lease,
        refresh_seconds=3600,  # the tests reload by hand
    )
    generation = GenerationService(
        images=ImageRepository(db), store=store, generator=client, cost=100,
        max_concurrent=2, max_jobs_per_user=3, max_prompt_chars=200, retry_seconds=0.5,
        process=lease, models=models,
    )  # fmt: skip
    await models.start()
    await generation.start()
    try:
        yield Process(models, generation, events)
    finally:
        await generation.close(deadline=5)
        await models.close()
        await lease.close()


async def run(
    process: Process, payer_db: Database, discord_id: int, image_size: str | None = None
) -> tuple[Payer, RecordingListener]:
    payer = await payer_for(payer_db, discord_id, 500)
    listener = RecordingListener()
    request = GenerationRequest("a banana", image_size=image_size)
    await process.generation.submit(payer, request, listener)
    await listener.done()
    return payer, listener


async def test_the_first_process_lists_the_models_for_everyone(
    db: Database, db_twin: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    async with process(db, client, local_store, ModelSettings()) as first:
        assert len(fake_api.model_requests) == 1
        assert first.models.catalog.default_model == NANO_BANANA_2_1
        snapshot = await ModelStateRepository(db).snapshot()
        assert snapshot.listed_at is not None
        assert {m for m, s in snapshot.states.items() if s.listed} == {
            NANO_BANANA_2_1, NANO_BANANA_2, "gemini-3.1-flash-lite-image", NANO_BANANA_PRO,
        }  # fmt: skip
        # A second process that can't list (here: the API refuses its key for a while) works
        # from the listing the first one stored.
        fake_api.expected_api_key = "another-key"
        fake_api.retire(NANO_BANANA_2)  # what the second process can't learn by itself
        async with process(db_twin, client, local_store, ModelSettings()) as second:
            assert second.models.listing_error is not None
            assert second.models.catalog.default_model == NANO_BANANA_2_1
            availability = second.models.catalog.availability
            assert availability is not None and NANO_BANANA_2 in (availability.listed or ())


async def test_auto_a_retired_model_moves_the_job_and_the_next_ones_to_its_successor(
    db: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    async with process(db, client, local_store, ModelSettings()) as bot:
        fake_api.retire(NANO_BANANA_2_1)
        payer, listener = await run(bot, db, 1)
        # The job that met the 404 was moved (same price) and made its image: charged once.
        assert listener.result is not None, listener.events
        assert listener.result.image.metadata["model"] == NANO_BANANA_2
        assert await coins_of(db, payer) == 400
        assert [r.model for r in fake_api.requests] == [NANO_BANANA_2_1, NANO_BANANA_2]
        [notice] = bot.notices()
        assert notice.kind == "retired" and notice.model == NANO_BANANA_2_1
        assert notice.replacement == NANO_BANANA_2
        # The next job goes straight to the successor.
        _, second = await run(bot, db, 2)
        assert second.result is not None
        assert fake_api.requests[-1].model == NANO_BANANA_2 and len(fake_api.requests) == 3
        assert len(bot.notices()) == 1
        await assert_ledger_consistent(db)


async def test_pinned_a_retired_model_is_refused_free_once_learnt_by_every_process(
    db: Database, db_twin: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    pinned = ModelSettings(model=NANO_BANANA_PRO)
    async with (
        process(db, client, local_store, pinned) as first,
        process(db_twin, client, local_store, pinned) as second,
    ):
        fake_api.retire(NANO_BANANA_PRO)
        # The first member to meet the 404 is refunded; the owner is told once.
        payer, listener = await run(first, db, 1)
        assert listener.failure is not None and listener.failure.key == "reason.model_retired"
        assert await coins_of(db, payer) == 500
        [notice] = first.notices()
        assert notice.model == NANO_BANANA_PRO and notice.replacement is None
        # The other process still thinks the model exists: its reservation checks the
        # deployment's record and refuses, free, without calling the API.
        assert second.models.catalog.default_model == NANO_BANANA_PRO
        other = await payer_for(db_twin, 2, 500)
        with pytest.raises(InvalidInput) as caught:
            await second.generation.submit(other, GenerationRequest("a banana"))
        assert caught.value.key in ("model.retired", "model.none_usable")
        assert await coins_of(db_twin, other) == 500
        assert len(fake_api.requests) == 1
        # It has learnt it now: refused from memory, before any await.
        with pytest.raises(InvalidInput):
            second.generation.cost_of(None)
        assert second.notices() == []  # told once, by the process that found it
        # One job (the first member's), FAILED and refunded once; the refused one was never
        # a job, and no image row exists.
        jobs = await db.fetchall("SELECT id, status FROM jobs")
        assert [r["status"] for r in jobs] == [JobStatus.FAILED.value]
        assert await ledger_of(db, jobs[0]["id"]) == [("GENERATION", -100), ("REFUND", 100)]
        assert await db.fetchval("SELECT COUNT(*) FROM images") == 0
        await assert_ledger_consistent(db)


@pytest.mark.parametrize("pinned", [False, True])
async def test_a_queued_job_for_a_model_retired_meanwhile_never_calls_it(
    db: Database, db_twin: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore, pinned: bool,
) -> None:  # fmt: skip
    settings = ModelSettings(model=NANO_BANANA_2_1) if pinned else ModelSettings()
    async with process(db, client, local_store, settings) as bot:
        payer = await payer_for(db, 1, 500)
        job = await bot.generation.reserve(payer, GenerationRequest("a banana"))
        # Another process finds the model gone before this job runs; this one has not
        # reloaded yet: the job learns it from the database as it starts.
        await ModelStateRepository(db_twin).retire(NANO_BANANA_2_1, "404 elsewhere")
        listener = RecordingListener()
        job.listener = listener
        await bot.generation.enqueue(job)
        await listener.done()
        if pinned:
            assert listener.failure is not None
            assert listener.failure.key == "reason.model_retired"
            assert fake_api.requests == [] and await coins_of(db, payer) == 500
        else:
            assert listener.result is not None
            assert [r.model for r in fake_api.requests] == [NANO_BANANA_2]
            assert await coins_of(db, payer) == 400
        await assert_ledger_consistent(db)


async def test_a_setting_the_api_refuses_is_remembered_and_no_longer_offered(
    db: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    fake_api.add_model(
        "gemini-5-flash-image",
        FakeModel(display_name="Nano Banana 5", sizes=("1K", "2K"), max_images=14,
                  mime_type="image/jpeg", thinking=True),
    )  # fmt: skip
    async with process(db, client, local_store, ModelSettings(model="gemini-5-flash-image")) as bot:
        profile = bot.models.catalog.default
        assert profile.origin == "inferred" and profile.image_sizes == ("1K", "2K", "4K")
        payer, listener = await run(bot, db, 1, image_size="4K")
        assert listener.failure is not None and listener.failure.key == "reason.request.size"
        assert await coins_of(db, payer) == 500
        assert bot.models.catalog.default.image_sizes == ("1K", "2K")
        with pytest.raises(InvalidInput) as caught:
            bot.generation.cost_of(None, "4K")
        assert caught.value.key == "size.unsupported"
        snapshot = await ModelStateRepository(db).snapshot()
        assert snapshot.states["gemini-5-flash-image"].refused == {"sizes": ("4K",)}


async def test_a_deprecation_the_api_announces_is_told_once(
    db: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    async with process(db, client, local_store, ModelSettings(model=NANO_BANANA_2)) as bot:
        await run(bot, db, 1)
        await run(bot, db, 2)
        await bot.generation.wait_idle()
        ending = bot.notices("ending")
        assert len(ending) == 1 and ending[0].replacement == NANO_BANANA_2_1
        assert "DEPRECATED" in (ending[0].detail or "")


async def test_a_model_retired_by_a_passing_404_comes_back_when_still_listed_a_day_later(
    db: Database, client: NanobananaClient, fake_api: FakeNanobanana,
    local_store: LocalObjectStore,
) -> None:  # fmt: skip
    states = ModelStateRepository(db)
    now = datetime.now(UTC)
    await states.retire(NANO_BANANA_2_1, "404", at=now - timedelta(hours=2))
    async with process(db, client, local_store, ModelSettings()) as bot:
        assert bot.models.catalog.default_model == NANO_BANANA_2
    await states.retire(NANO_BANANA_PRO, "404", at=now - timedelta(hours=25))
    relisted = await states.record_listing([], at=now)  # not listed: stays retired
    assert relisted == []
    clock = now + timedelta(hours=30)
    async with process(db, client, local_store, ModelSettings()) as bot:
        bot.models.clock = lambda: clock
        await bot.models.list_now()
        snapshot = await states.snapshot()
        assert not snapshot.states[NANO_BANANA_2_1].retired  # listed again, a day later
        assert bot.models.catalog.default_model == NANO_BANANA_2_1
