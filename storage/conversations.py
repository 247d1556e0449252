"""ConversationRepository: conversations and their turns (migration 0014).

A turn names the paid image job that made it; its status is that job's (a turn whose job
failed is skipped, as if it had never been asked), and what it sent and got back is that job's
image row (written in the transaction that completes the job). So the money of a turn is the
job's alone: this module never touches a wallet.

The turns that count ("the chain"): for each position, the newest turn not undone whose job
did not fail. Undo sets `undone_at` on the last position's turns; a Branch copies the chain up
to a position into a new conversation, naming the same jobs.

Standard SQL with `?` placeholders only, so the same statements run on every backend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from storage.db import Database, Transaction
from storage.jobs import JobStatus
from storage.models import Row
from storage.timeutil import from_iso, utcnow_iso

_CONVERSATION = (
    "id, user_id, guild_id, root_image_id, branched_from, channel_id, thread_id, created_at, "
    "updated_at"
)
_TURN = (
    "t.id, t.conversation_id, t.position, t.job_id, t.prompt, t.undone_at, t.created_at, j.status"
)
_INSERT_CONVERSATION = (
    f"INSERT INTO conversations ({_CONVERSATION}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)"
)
_UNFINISHED = (JobStatus.PENDING.value, JobStatus.PROCESSING.value)


@dataclass(frozen=True)
class ConversationRow:
    """A conversation as stored: its owner, server, the image it starts from, and where it
    is shown on Discord (a thread, if any)."""

    id: str
    user_id: str
    guild_id: int | None
    root_image_id: str
    branched_from: str | None
    channel_id: int | None
    thread_id: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ConversationRow:
        def snowflake(value: object) -> int | None:
            return int(str(value)) if value is not None else None

        return cls(
            id=row["id"],
            user_id=row["user_id"],
            guild_id=snowflake(row["guild_id"]),
            root_image_id=row["root_image_id"],
            branched_from=row["branched_from"],
            channel_id=snowflake(row["channel_id"]),
            thread_id=snowflake(row["thread_id"]),
            created_at=from_iso(row["created_at"]),
            updated_at=from_iso(row["updated_at"]),
        )


@dataclass(frozen=True)
class TurnRow:
    """One turn: its place in the conversation, the job that made it and that job's status."""

    id: str
    conversation_id: str
    position: int
    job_id: str
    prompt: str
    status: JobStatus
    created_at: datetime
    undone: bool = False

    @property
    def finished(self) -> bool:
        return self.status is JobStatus.COMPLETED

    @property
    def running(self) -> bool:
        return self.status.value in _UNFINISHED

    @classmethod
    def from_row(cls, row: Row) -> TurnRow:
        return cls(
            id=row["id"],
            conversation_id=row["conversation_id"],
            position=int(row["position"]),
            job_id=row["job_id"],
            prompt=row["prompt"],
            status=JobStatus(row["status"]),
            created_at=from_iso(row["created_at"]),
            undone=row["undone_at"] is not None,
        )


def chain_of(turns: list[TurnRow]) -> list[TurnRow]:
    """The turns that count, oldest first: per position, the newest live turn whose job did
    not fail (`turns` as `ConversationRepository.turns` lists them)."""
    chosen: dict[int, TurnRow] = {}
    for turn in turns:
        if turn.undone or turn.status is JobStatus.FAILED:
            continue
        current = chosen.get(turn.position)
        if current is None or (turn.created_at, turn.id) >= (current.created_at, current.id):
            chosen[turn.position] = turn
    return [chosen[p] for p in sorted(chosen)]


class ConversationRepository:
    """Create, find and change conversations; list, add and undo their turns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        user_id: str,
        guild_id: int | None,
        root_image_id: str,
        channel_id: int | None = None,
        branched_from: str | None = None,
    ) -> ConversationRow:
        """A new conversation starting from `root_image_id`, with no turn yet."""
        conversation_id = str(uuid.uuid4())
        now = utcnow_iso()

        async def insert(tx: Transaction) -> None:
            await tx.execute(
                _INSERT_CONVERSATION,
                (
                    conversation_id, user_id, _text(guild_id), root_image_id, branched_from,
                    _text(channel_id), now, now,
                ),
            )  # fmt: skip

        await self.db.write(insert)
        found = await self.get(conversation_id)
        assert found is not None
        return found

    async def get(self, conversation_id: str) -> ConversationRow | None:
        row = await self.db.fetchone(
            f"SELECT {_CONVERSATION} FROM conversations WHERE id = ?", (conversation_id,)
        )
        return ConversationRow.from_row(row) if row is not None else None

    async def by_thread(self, thread_id: int) -> ConversationRow | None:
        """The conversation a Discord thread shows, if any."""
        row = await self.db.fetchone(
            f"SELECT {_CONVERSATION} FROM conversations WHERE thread_id = ?", (str(thread_id),)
        )
        return ConversationRow.from_row(row) if row is not None else None

    async def with_job(self, job_id: str, *, threaded: bool | None = None) -> list[ConversationRow]:
        """The conversations with a live turn made by `job_id`, newest first (`threaded`:
        only those shown in a thread, or only those not, when given)."""
        where = ""
        if threaded is not None:
            where = " AND c.thread_id IS NOT NULL" if threaded else " AND c.thread_id IS NULL"
        rows = await self.db.fetchall(
            "SELECT DISTINCT c.id, c.user_id, c.guild_id, c.root_image_id, c.branched_from, "
            "c.channel_id, c.thread_id, c.created_at, c.updated_at FROM conversations c "
            "JOIN conversation_turns t ON t.conversation_id = c.id "
            f"WHERE t.job_id = ? AND t.undone_at IS NULL{where} "
            "ORDER BY c.created_at DESC, c.id DESC",
            (job_id,),
        )
        return [ConversationRow.from_row(row) for row in rows]

    async def list_for(self, user_id: str, *, limit: int = 50) -> list[ConversationRow]:
        """A member's conversations, newest first."""
        rows = await self.db.fetchall(
            f"SELECT {_CONVERSATION} FROM conversations WHERE user_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (user_id, limit),
        )
        return [ConversationRow.from_row(row) for row in rows]

    async def set_thread(self, conversation_id: str, channel_id: int, thread_id: int) -> bool:
        """Show the conversation in a thread (once: False if it already has one)."""
        changed = await self.db.execute(
            "UPDATE conversations SET thread_id = ?, channel_id = ?, updated_at = ? "
            "WHERE id = ? AND thread_id IS NULL",
            (str(thread_id), str(channel_id), utcnow_iso(), conversation_id),
        )
        return changed > 0

    async def turns(self, conversation_id: str) -> list[TurnRow]:
        """Every turn (undone ones too), by position then age, with its job's status."""
        rows = await self.db.fetchall(
            f"SELECT {_TURN} FROM conversation_turns t JOIN jobs j ON j.id = t.job_id "
            "WHERE t.conversation_id = ? ORDER BY t.position, t.created_at, t.id",
            (conversation_id,),
        )
        return [TurnRow.from_row(row) for row in rows]

    async def chain(self, conversation_id: str) -> list[TurnRow]:
        """The turns that count (see `chain_of`)."""
        return chain_of(await self.turns(conversation_id))

    async def add_turn(
        self, conversation_id: str, job_id: str, prompt: str, *, position: int | None = None
    ) -> TurnRow:
        """A turn made by `job_id`: at `position` (a Reroll: the same place again), else after
        the chain's last turn."""
        turn_id = str(uuid.uuid4())
        now = utcnow_iso()

        async def insert(tx: Transaction) -> None:
            place = position
            if place is None:
                place = await tx.fetchval(
                    "SELECT COALESCE(MAX(t.position), 0) + 1 FROM conversation_turns t "
                    "JOIN jobs j ON j.id = t.job_id WHERE t.conversation_id = ? "
                    "AND t.undone_at IS NULL AND j.status <> 'FAILED' AND t.job_id <> ?",
                    (conversation_id, job_id),
                )
            await tx.execute(
                "INSERT INTO conversation_turns (id, conversation_id, position, job_id, prompt, "
                "undone_at, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (turn_id, conversation_id, int(place), job_id, prompt, now),
            )
            await tx.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )

        await self.db.write(insert)
        for turn in await self.turns(conversation_id):
            if turn.id == turn_id:
                return turn
        raise LookupError(turn_id)  # pragma: no cover - the insert committed

    async def undo(self, conversation_id: str) -> int | None:
        """Undo the chain's last turn (every live turn at its position): the position undone,
        or None when there is nothing to undo or a turn is still being made (checked in the
        same transaction)."""
        now = utcnow_iso()

        async def body(tx: Transaction) -> int | None:
            busy = await tx.fetchval(
                "SELECT COUNT(*) FROM conversation_turns t JOIN jobs j ON j.id = t.job_id "
                "WHERE t.conversation_id = ? AND t.undone_at IS NULL "
                "AND j.status IN ('PENDING', 'PROCESSING')",
                (conversation_id,),
            )
            if busy:
                return None
            last = await tx.fetchval(
                "SELECT MAX(t.position) FROM conversation_turns t JOIN jobs j ON j.id = t.job_id "
                "WHERE t.conversation_id = ? AND t.undone_at IS NULL AND j.status = 'COMPLETED'",
                (conversation_id,),
            )
            if last is None:
                return None
            await tx.execute(
                "UPDATE conversation_turns SET undone_at = ? "
                "WHERE conversation_id = ? AND position >= ? AND undone_at IS NULL",
                (now, conversation_id, int(last)),
            )
            await tx.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
            return int(last)

        return await self.db.write(body)

    async def branch(
        self, source: ConversationRow, chain: list[TurnRow], *, user_id: str,
        channel_id: int | None = None,
    ) -> ConversationRow:  # fmt: skip
        """A new conversation of `user_id` from `source`'s root with `chain` (turns of
        `source`, oldest first) as its first turns, naming the same jobs (nothing is copied
        or charged), in one transaction."""
        conversation_id = str(uuid.uuid4())
        now = utcnow_iso()
        origin = chain[-1].id if chain else None

        async def insert(tx: Transaction) -> None:
            await tx.execute(
                _INSERT_CONVERSATION,
                (
                    conversation_id, user_id, _text(source.guild_id), source.root_image_id,
                    origin, _text(channel_id), now, now,
                ),
            )  # fmt: skip
            await tx.executemany(
                "INSERT INTO conversation_turns (id, conversation_id, position, job_id, prompt, "
                "undone_at, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                [
                    (str(uuid.uuid4()), conversation_id, n, turn.job_id, turn.prompt, now)
                    for n, turn in enumerate(chain, start=1)
                ],
            )

        await self.db.write(insert)
        found = await self.get(conversation_id)
        assert found is not None
        return found


def _text(value: int | None) -> str | None:
    return str(value) if value is not None else None
