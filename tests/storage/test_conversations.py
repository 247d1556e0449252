"""ConversationRepository (migration 0014) on both backends: turns follow their jobs (a failed
job's turn does not count, a Reroll takes its turn's place), Undo drops the last turn, a
Branch shares the turns it copies, and nothing here touches a wallet."""

from __future__ import annotations

from storage.conversations import ConversationRepository
from storage.db import Database
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

OWNER = "process-1"
GUILD = 77


async def finished(db: Database, user, wallet, prompt: str) -> str:  # type: ignore[no-untyped-def]
    """A COMPLETED image job (its image row written as the bot writes it); its id."""
    job = await paid_job(db, user, wallet, prompt=prompt, lease_owner=OWNER, processing=True,
                         guild_id=GUILD)  # fmt: skip
    stored = StoredObject(f"images/u/{job.id}.png", None, f"thumbnails/u/{job.id}.webp", None)
    await ImageRepository(db).complete(job.id, stored, {"model": "m", "turn": {"parts": []}})
    return job.id


async def test_turns_follow_their_jobs_and_undo_and_branch(db: Database) -> None:
    user, wallet = await member(db, 1, coins=1000, guild_id=GUILD)
    repo = ConversationRepository(db)
    root = await finished(db, user, wallet, "root")
    conversation = await repo.create(user_id=user.id, guild_id=GUILD, root_image_id=root)
    assert conversation.guild_id == GUILD and await repo.chain(conversation.id) == []
    one = await finished(db, user, wallet, "one")
    first = await repo.add_turn(conversation.id, one, "one")
    assert first.position == 1 and first.finished
    # A failed turn does not count, and the next turn takes its place.
    failing = await paid_job(db, user, wallet, prompt="two", lease_owner=OWNER, guild_id=GUILD)
    await repo.add_turn(conversation.id, failing.id, "two")
    assert [t.prompt for t in await repo.chain(conversation.id)] == ["one", "two"]
    assert await repo.undo(conversation.id) is None  # a turn is being made
    await JobRepository(db).fail_and_refund(failing.id, "boom")
    assert [t.prompt for t in await repo.chain(conversation.id)] == ["one"]
    two = await finished(db, user, wallet, "two again")
    second = await repo.add_turn(conversation.id, two, "two again")
    assert second.position == 2
    # A Reroll of turn 2 takes its place; the older one no longer counts.
    again = await finished(db, user, wallet, "two again")
    await repo.add_turn(conversation.id, again, "two again", position=2)
    assert [t.job_id for t in await repo.chain(conversation.id)] == [one, again]
    # Branch from turn 1: a new conversation naming the same job.
    chain = await repo.chain(conversation.id)
    branch = await repo.branch(conversation, chain[:1], user_id=user.id)
    assert [t.job_id for t in await repo.chain(branch.id)] == [one]
    assert branch.branched_from == chain[0].id and branch.root_image_id == root
    assert [c.id for c in await repo.with_job(one)] == [branch.id, conversation.id]
    # Undo drops the last position (both of its turns) and nothing else.
    assert await repo.undo(conversation.id) == 2
    assert [t.job_id for t in await repo.chain(conversation.id)] == [one]
    assert await repo.undo(conversation.id) == 1
    assert await repo.undo(conversation.id) is None
    assert [t.job_id for t in await repo.chain(branch.id)] == [one]  # the branch keeps it
    # A thread shows one conversation, once.
    assert await repo.set_thread(branch.id, 5, 6) is True
    assert await repo.set_thread(branch.id, 5, 7) is False
    found = await repo.by_thread(6)
    assert found is not None and found.id == branch.id and found.channel_id == 5
    await assert_ledger_consistent(db)


async def test_deleting_the_image_it_starts_from_deletes_the_conversation(db: Database) -> None:
    user, wallet = await member(db, 2, coins=500, guild_id=GUILD)
    repo = ConversationRepository(db)
    root = await finished(db, user, wallet, "root")
    conversation = await repo.create(user_id=user.id, guild_id=GUILD, root_image_id=root)
    await repo.add_turn(conversation.id, await finished(db, user, wallet, "one"), "one")
    await db.execute("DELETE FROM images WHERE id = ?", (root,))
    assert await repo.get(conversation.id) is None
    assert int(await db.fetchval("SELECT COUNT(*) FROM conversation_turns")) == 0
