"""OrderService: the one entry of every paid job (prepare in memory, then place), over a real
database (both backends), the real client against the fake API and a local store, wired as
bot.app wires it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image as PILImage
from pydantic import SecretStr

from bot.config import EconomyScope, Settings
from bot.nanobanana import MAX_INPUT_SIDE, NanobananaClient
from bot.services.accounts import AccountService
from bot.services.errors import (
    InvalidInput,
    NotAllowed,
    NotEnoughCoins,
    QueueFull,
    TooManyJobs,
    TooSoon,
    UserFacingError,
)
from bot.services.events import EventBus
from bot.services.gallery import GalleryService
from bot.services.generation import GenerationRequest, GenerationService
from bot.services.media import Declared, InputImages
from bot.services.members import Member, MemberService, Payer, Purpose
from bot.services.moderation import ModerationService
from bot.services.orders import OrderService, RequestBuild, Ticket
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.ratelimits import MemberLimits
from bot.services.settings import GuildSettingsService
from bot.services.wallets import WalletService
from storage.db import Database
from storage.guild_settings import GuildSettingsRepository
from storage.images import ImageRepository
from storage.jobs import JobStatus
from storage.models import TransactionKind
from storage.moderation import ModerationRepository
from storage.objects import LocalObjectStore
from storage.usage import UsageRepository
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.bot.services.conftest import RecordingListener, job_row, ledger_of
from tests.bot.services.test_generation import make_service
from tests.fakes.nanobanana_server import FakeNanobanana
from tests.storage.helpers import assert_ledger_consistent

GUILD, OTHER_GUILD = 9001, 9002
CHANNEL, OTHER_CHANNEL = 700000000000000001, 700000000000000002


@dataclass
class Shop:
    """The services an order goes through, as bot.app wires them."""

    db: Database
    settings: GuildSettingsService
    accounts: AccountService
    wallets: WalletService
    members: MemberService
    moderation: ModerationService
    generation: GenerationService
    orders: OrderService
    store: LocalObjectStore

    async def coins(self, identity: Identity) -> int:
        """The member's balance in the server they act in (their wallet opened on first use)."""
        member = await self.members.enter(identity)
        return (await self.wallets.open(member.user, identity.guild_id)).coins

    async def jobs(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM jobs"))

    def slots(self, identity: Identity) -> int:
        """The member's job slots held in this process (admitted, queued or running)."""
        return self.generation.active_jobs(identity.discord_id)

    async def order(
        self,
        identity: Identity,
        prompt: str = "a banana",
        listener: RecordingListener | None = None,
        **options: Any,
    ) -> RecordingListener:
        """prepare, then place a plain image job; returns its listener."""
        listener = listener or RecordingListener()
        ticket = await self.orders.prepare(identity, prompt=prompt, **options)
        await self.orders.place(ticket, plain(ticket), listener)
        return listener


def plain(ticket: Ticket[GenerationRequest], **request: Any) -> RequestBuild[GenerationRequest]:
    """What /generate builds for a prompt without images."""

    async def build(member: Member, payer: Payer) -> GenerationRequest:
        return GenerationRequest(prompt=ticket.prompt, **request)

    return build


@contextlib.asynccontextmanager
async def open_shop(
    db: Database,
    store: LocalObjectStore,
    client: NanobananaClient,
    *,
    max_concurrent: int = 2,
    queue_size: int = 200,
    allowed: frozenset[int] = frozenset(),
    **overrides: Any,
) -> AsyncIterator[Shop]:
    """The services of one bot process (`overrides` are its Settings), started and closed."""
    settings = Settings(discord_token=SecretStr("x"), **overrides)
    permissions = PermissionService(scope=EconomyScope.GUILD, allowed_guild_ids=allowed)
    users = UserRepository(db)
    images = ImageRepository(db, max_balance=settings.max_balance)
    accounts = AccountService(users, permissions)
    guild_settings = GuildSettingsService(
        GuildSettingsRepository(db), permissions, accounts,
        defaults=GuildSettingsService.defaults_from(settings), scope=EconomyScope.GUILD,
        max_coins=settings.max_grant,
    )  # fmt: skip
    wallets = WalletService(
        wallets=WalletRepository(db, max_balance=settings.max_balance), images=images,
        accounts=accounts, settings=guild_settings, permissions=permissions,
        scope=EconomyScope.GUILD, max_grant=settings.max_grant,
    )  # fmt: skip
    generation = make_service(
        images, store, client, cost=settings.generation_cost, max_concurrent=max_concurrent,
        max_jobs_per_user=settings.max_jobs_per_user, max_prompt_chars=settings.max_prompt_chars,
        queue_size=queue_size, lookahead=0,
    )  # fmt: skip
    gallery = GalleryService(
        images=images, users=users, store=store, permissions=permissions, unstored=generation
    )
    events = EventBus()
    moderation = ModerationService(
        ModerationRepository(db), permissions=permissions, accounts=accounts,
        settings=guild_settings, gallery=gallery, images=images, usage=UsageRepository(db),
        events=events,
    )  # fmt: skip
    members = MemberService(
        accounts=accounts, settings=guild_settings, wallets=wallets, permissions=permissions,
        moderation=moderation, limits=MemberLimits(),
    )  # fmt: skip
    inputs = InputImages(
        None, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_input_pixels,
        max_side=MAX_INPUT_SIDE,
    )  # fmt: skip
    orders = OrderService(
        generation=generation, members=members, moderation=moderation,
        settings=guild_settings, inputs=inputs,
    )  # fmt: skip
    await generation.start()
    try:
        yield Shop(db, guild_settings, accounts, wallets, members, moderation, generation,
                   orders, store)  # fmt: skip
    finally:
        await generation.close(deadline=5)


def someone(discord_id: int, guild_id: int | None = GUILD, **identity: Any) -> Identity:
    fields: dict[str, Any] = {"channel_id": CHANNEL, **identity}
    return Identity(discord_id, f"member {discord_id}", guild_id=guild_id, **fields)


async def moderator(shop: Shop, guild_id: int = GUILD) -> Actor:
    identity = Identity(99, "mod", guild_id=guild_id, can_manage_guild=True, channel_id=CHANNEL)
    return await shop.accounts.actor(identity, create=True)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), "orange").save(buffer, "PNG")
    return buffer.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(data)) as image:
        return image.size


async def refused(
    attempt: Awaitable[Any], kind: type[UserFacingError] = UserFacingError
) -> UserFacingError:
    """The refusal `attempt` raises (of type `kind`)."""
    with pytest.raises(kind) as caught:
        await attempt
    return caught.value


@pytest.fixture
def hold(fake_api: FakeNanobanana) -> asyncio.Event:
    """The fake API holds every answer until the test sets this (jobs stay running)."""
    gate = asyncio.Event()
    fake_api.gate = gate
    return gate


async def test_the_generate_turn_is_taken_once_per_order_at_the_servers_rate(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """A server allows 2 orders a minute (the host 10): two whole orders (prepare + place)
    pass, so placing takes no turn of its own; the third is refused before anything else,
    free, holding no slot."""
    async with open_shop(db, local_store, client, max_jobs_per_user=5) as shop:
        mod = await moderator(shop)
        await shop.settings.change(mod, GUILD, "rate_limits", "generate=2")
        await shop.settings.effective(GUILD)  # read as the server's first use would
        member = someone(1)
        first = await shop.order(member)
        second = await shop.order(member)
        error = await refused(shop.orders.prepare(member, prompt="a third banana"), TooSoon)
        assert error.key == "error.cooldown"
        assert shop.slots(member) <= 2 and await shop.jobs() == 2
        await first.done()
        await second.done()
        assert first.result is not None and second.result is not None
        assert await shop.coins(member) == 300 - 2 * 100
        # The member's bucket is theirs wherever they act: another server gives no more.
        elsewhere = someone(1, OTHER_GUILD)
        await refused(shop.orders.prepare(elsewhere, prompt="a banana"), TooSoon)
        # Another member of the server has their own two turns.
        neighbour = someone(2)
        for _ in range(2):
            ticket = await shop.orders.prepare(neighbour, prompt="a banana")
            ticket.cancel()
        await refused(shop.orders.prepare(neighbour, prompt="a banana"), TooSoon)
        assert shop.slots(elsewhere) == 0 and shop.slots(neighbour) == 0
        assert await shop.jobs() == 2
        await assert_ledger_consistent(db)


async def test_every_refusal_from_memory_is_free_and_holds_no_slot(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana, hold: asyncio.Event,
) -> None:  # fmt: skip
    """Each check `prepare` makes refuses privately, charges nothing, writes no job and gives
    back the job slot; with one slot per member and room for two jobs in the process, a slot
    left behind by any of them would refuse the orders that follow."""
    async with open_shop(
        db, local_store, client, max_concurrent=1, queue_size=1, max_jobs_per_user=1,
        allowed=frozenset({GUILD}), rate_limits="generate=1000", max_prompt_chars=50,
        max_upload_bytes=100_000, max_input_pixels=4_000_000,
    ) as shop:  # fmt: skip
        mod = await moderator(shop)
        await shop.settings.change(mod, GUILD, "channel_ids", f"<#{CHANNEL}>",
                                   channel_ids=[CHANNEL])  # fmt: skip
        await shop.moderation.add_entry(mod, GUILD, "durian", pattern=False)
        member = someone(1)
        assert await shop.coins(member) == 300
        cases: list[tuple[str, Callable[[], Awaitable[Ticket[GenerationRequest]]]]] = [
            ("prompt.empty", lambda: shop.orders.prepare(member, prompt=" \u200b ")),
            ("prompt.too_long", lambda: shop.orders.prepare(member, prompt="x" * 51)),
            ("aspect.unsupported", lambda: shop.orders.prepare(member, prompt="a", ratio="7:3")),
            ("model.unsupported", lambda: shop.orders.prepare(member, prompt="a", model="gpt-1")),
            ("image.too_large", lambda: shop.orders.prepare(
                member, prompt="a", declared=[Declared("big.png", 100_001, "image/png")])),
            ("image.unsupported_format", lambda: shop.orders.prepare(
                member, prompt="a", declared=[Declared("a.gif", 100, "image/gif")])),
            ("image.too_many_pixels", lambda: shop.orders.prepare(
                member, prompt="a", declared=[Declared("a.png", 100, "image/png", 2001, 2000)])),
            ("settings.wrong_channel", lambda: shop.orders.prepare(
                someone(1, channel_id=OTHER_CHANNEL), prompt="a")),
            ("error.guild_not_allowed", lambda: shop.orders.prepare(
                someone(1, OTHER_GUILD), prompt="a")),
            ("blocklist.prompt_blocked", lambda: shop.orders.prepare(
                member, prompt="a DURIAN, please")),
        ]  # fmt: skip
        for key, attempt in cases:
            error = await refused(attempt())
            assert error.key == key, (key, error.key)
            assert shop.slots(member) == 0, key
        assert await shop.jobs() == 0 and await shop.coins(member) == 300
        # A member whose job runs has no slot left (refused in memory); the process has room
        # for one more job (another member's), then none.
        running = await shop.order(member)
        await refused(shop.orders.prepare(member, prompt="a"), TooManyJobs)
        other = someone(2)
        waiting = await shop.order(other)
        await refused(shop.orders.prepare(someone(3), prompt="a"), QueueFull)
        assert (shop.slots(member), shop.slots(other), shop.slots(someone(3))) == (1, 1, 0)
        # A member known to be short is refused before any slot is taken.
        poor = someone(4)
        member_4 = await shop.members.enter(poor)
        wallet = await shop.wallets.open(member_4.user, GUILD)
        await WalletRepository(db).debit(wallet.id, 250, kind=TransactionKind.ADJUSTMENT)
        await shop.members.payer(member_4, Purpose.GENERATE)  # seen short now
        short = await refused(shop.orders.prepare(poor, prompt="a"), NotEnoughCoins)
        assert isinstance(short, NotEnoughCoins) and (short.balance, short.cost) == (50, 100)
        hold.set()
        await running.done()
        await waiting.done()
        assert running.result is not None and waiting.result is not None
        assert await shop.jobs() == 2
        assert await shop.coins(member) == 200 and await shop.coins(poor) == 50
        # Every slot came back: the next orders go through.
        again = await shop.order(member)
        await again.done()
        assert again.result is not None
        await assert_ledger_consistent(db)


async def test_a_refusal_in_place_charges_nothing_and_gives_the_slot_back(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """What only the database or the bytes can tell refuses the order after `prepare` let
    it through: the member blocked meanwhile, a wallet that can't pay (first sight of it), a
    damaged image, a prompt blocklisted meanwhile. Each charges nothing, writes no job and
    gives the ticket's slot back (one slot per member: a slot kept would refuse the next)."""
    async with open_shop(db, local_store, client, max_jobs_per_user=1) as shop:
        mod = await moderator(shop)
        member = someone(1)
        assert await shop.coins(member) == 300

        async def damaged(member: Member, payer: Payer) -> GenerationRequest:
            inputs = await shop.orders.images([("photo.png", png(64, 64)[:80])])
            return GenerationRequest("a banana", inputs=inputs)

        async def blocked_meanwhile(ticket: Ticket[GenerationRequest]) -> None:
            await shop.moderation.add_entry(mod, GUILD, "banana", pattern=False)

        async def member_blocked(ticket: Ticket[GenerationRequest]) -> None:
            await shop.moderation.block_member(mod, GUILD, member, "spam")

        cases: list[
            tuple[
                str,
                Callable[[Ticket[GenerationRequest]], Awaitable[None]] | None,
                RequestBuild[GenerationRequest] | None,
            ]
        ]
        cases = [
            ("image.corrupt", None, damaged),
            ("blocklist.prompt_blocked", blocked_meanwhile, None),
            ("moderation.member_blocked", member_blocked, None),
        ]
        for key, meanwhile, build in cases:
            ticket = await shop.orders.prepare(member, prompt="a banana")
            assert shop.slots(member) == 1
            if meanwhile is not None:
                await meanwhile(ticket)
            error = await refused(shop.orders.place(ticket, build or plain(ticket)))
            assert error.key == key
            assert ticket.admission.released and shop.slots(member) == 0, key
            assert await shop.jobs() == 0 and await shop.coins(member) == 300, key
            if key == "blocklist.prompt_blocked":
                await shop.moderation.remove_entry(mod, GUILD, "banana")
        assert isinstance(error, NotAllowed)
        # First sight of a member who can't pay: `prepare` can't know, `place` refuses.
        poor = someone(2)
        poor_member = await shop.members.enter(poor)
        wallet = await shop.wallets.open(poor_member.user, GUILD)
        await WalletRepository(db).debit(wallet.id, 250, kind=TransactionKind.ADJUSTMENT)
        ticket = await shop.orders.prepare(poor, prompt="a banana")
        await refused(shop.orders.place(ticket, plain(ticket)), NotEnoughCoins)
        assert shop.slots(poor) == 0 and await shop.jobs() == 0
        # Now it is known: refused in `prepare`, before any slot.
        await refused(shop.orders.prepare(poor, prompt="a banana"), NotEnoughCoins)
        # The slots are free: an order of another member goes through.
        done = await shop.order(someone(3))
        await done.done()
        assert done.result is not None and await shop.coins(someone(3)) == 200
        await assert_ledger_consistent(db)


async def test_a_rerolls_stored_prompt_is_blocklisted_again(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """An image made before a word was blocklisted: its Reroll (the stored prompt, ordered
    again) is refused in `prepare`, and a Reroll prepared before the word was added is refused
    in `place` (the reservation reads the list again). Free, no slot held."""
    async with open_shop(db, local_store, client) as shop:
        mod = await moderator(shop)
        member = someone(1)
        made = await shop.order(member, prompt="a ripe durian")
        await made.done()
        assert made.result is not None
        image = made.result.image
        assert await shop.coins(member) == 200

        async def reroll(member: Member, payer: Payer) -> GenerationRequest:
            return await shop.generation.reroll_request(image)

        early = await shop.orders.prepare(member, prompt=image.prompt or "")
        await shop.moderation.add_entry(mod, GUILD, "durian", pattern=False)
        error = await refused(shop.orders.place(early, reroll), InvalidInput)
        assert error.key == "blocklist.prompt_blocked"
        error = await refused(shop.orders.prepare(member, prompt=image.prompt or ""), InvalidInput)
        assert error.key == "blocklist.prompt_blocked"
        assert shop.slots(member) == 0 and await shop.coins(member) == 200
        assert await shop.jobs() == 1 and len(fake_api.requests) == 1
        # Once the word is off the list, the same Reroll goes through with the stored prompt.
        await shop.moderation.remove_entry(mod, GUILD, "durian")
        listener = RecordingListener()
        again = await shop.orders.prepare(member, prompt=image.prompt or "")
        job = await shop.orders.place(again, reroll, listener)
        await listener.done()
        assert listener.result is not None and fake_api.requests[-1].prompt == "a ripe durian"
        assert (await job_row(db, job.id)).status is JobStatus.COMPLETED
        assert await ledger_of(db, job.id) == [("GENERATION", -100)]
        await assert_ledger_consistent(db)


async def test_inputs_are_shrunk_to_the_models_side_and_stored_small(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """An image sent with an order is checked and shrunk once, to MAX_INPUT_SIDE on its long
    side: the model gets it so, and the job stores it so (what a Reroll reads back). One
    already within the side is kept byte for byte."""
    async with open_shop(db, local_store, client, max_upload_bytes=5_000_000) as shop:
        member = someone(1)
        big, small = png(MAX_INPUT_SIDE + 952, 1500), png(640, 480)
        ticket = await shop.orders.prepare(
            member, prompt="make it blue",
            declared=[Declared("big.png", len(big), "image/png", MAX_INPUT_SIDE + 952, 1500)],
        )  # fmt: skip

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            inputs = await shop.orders.images([("big.png", big), ("small.png", small)])
            return GenerationRequest(ticket.prompt, inputs=inputs)

        listener = RecordingListener()
        await shop.orders.place(ticket, build, listener)
        await listener.done()
        assert listener.result is not None
        sent = fake_api.requests[0].images
        assert [size_of(data) for _, data in sent] == [(MAX_INPUT_SIDE, 1024), (640, 480)]
        assert sent[1][1] == small
        stored = listener.result.image.metadata["input_keys"]
        assert [size_of(await local_store.get(key)) for key in stored] == [
            (MAX_INPUT_SIDE, 1024), (640, 480),
        ]  # fmt: skip


async def test_max_input_pixels_is_enforced_on_the_bytes_as_well_as_on_what_is_declared(
    db: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """MAX_INPUT_PIXELS refuses an image Discord declares too big in `prepare`; one whose size
    nobody declared (the API's uploads) is refused from its bytes in `place`. Both free."""
    async with open_shop(db, local_store, client, max_input_pixels=1_000_000) as shop:
        member = someone(1)
        declared = Declared("wide.png", 10_000, "image/png", 1001, 1000)
        error = await refused(
            shop.orders.prepare(member, prompt="a", declared=[declared]), InvalidInput
        )
        assert (error.key, error.params["limit_mp"]) == ("image.too_many_pixels", 1)
        undeclared = png(1001, 1000)
        ticket = await shop.orders.prepare(
            member, prompt="a", declared=[Declared("wide.png", len(undeclared))]
        )

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            inputs = await shop.orders.images([("wide.png", undeclared)])
            return GenerationRequest(ticket.prompt, inputs=inputs)

        error = await refused(shop.orders.place(ticket, build), InvalidInput)
        assert error.key == "image.too_many_pixels"
        assert (error.params["width"], error.params["height"]) == (1001, 1000)
        assert shop.slots(member) == 0 and await shop.jobs() == 0
        assert await shop.coins(member) == 300 and fake_api.requests == []
        # Within the cap, the same order goes through.
        fits = png(1000, 1000)

        async def build_fitting(member: Member, payer: Payer) -> GenerationRequest:
            return GenerationRequest("a", inputs=await shop.orders.images([("ok.png", fits)]))

        listener = RecordingListener()
        ticket = await shop.orders.prepare(member, prompt="a")
        await shop.orders.place(ticket, build_fitting, listener)
        await listener.done()
        assert listener.result is not None and fake_api.requests[0].images == [("image/png", fits)]
