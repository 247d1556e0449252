"""MemberPreferenceRepository: what a member chose for themselves, wherever they use the bot
(results kept private; hidden from leaderboards), and the leaderboards they may appear on."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, Transaction
from storage.timeutil import utcnow_iso

_FIELDS = ("private_results", "leaderboard_hidden")


@dataclass(frozen=True)
class Preferences:
    """A member's own choices (the defaults for a member who never chose)."""

    private_results: bool = False
    leaderboard_hidden: bool = False


@dataclass(frozen=True)
class Standing:
    """One line of a leaderboard: a member (Discord id) and their figure."""

    discord_id: int
    value: int


class MemberPreferenceRepository:
    """Rows of `member_preferences`, and the leaderboards that honour them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: str) -> Preferences:
        row = await self.db.fetchone(
            "SELECT private_results, leaderboard_hidden FROM member_preferences WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return Preferences()
        return Preferences(bool(row[0]), bool(row[1]))

    async def of_discord_user(self, discord_id: int) -> Preferences:
        """`get` by a member's Discord id (the defaults for someone the bot never saw)."""
        row = await self.db.fetchone(
            "SELECT p.private_results, p.leaderboard_hidden FROM member_preferences p "
            "JOIN users u ON u.id = p.user_id WHERE u.discord_id = ?",
            (str(discord_id),),
        )
        if row is None:
            return Preferences()
        return Preferences(bool(row[0]), bool(row[1]))

    async def set(
        self,
        user_id: str,
        *,
        private_results: bool | None = None,
        leaderboard_hidden: bool | None = None,
    ) -> Preferences:
        """Change the given choices (None: unchanged) in one statement; the result."""
        changes = {"private_results": private_results, "leaderboard_hidden": leaderboard_hidden}
        given = {name: int(value) for name, value in changes.items() if value is not None}

        async def write(tx: Transaction) -> Preferences:
            now = utcnow_iso()
            values = {name: given.get(name, 0) for name in _FIELDS}
            updates = "".join(f", {name} = ?" for name in given)
            row = await tx.fetchone(
                "INSERT INTO member_preferences (user_id, private_results, leaderboard_hidden, "
                "updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                f"updated_at = ?{updates} RETURNING private_results, leaderboard_hidden",
                (user_id, values["private_results"], values["leaderboard_hidden"], now, now,
                 *given.values()),
            )  # fmt: skip
            assert row is not None
            return Preferences(bool(row[0]), bool(row[1]))

        return await self.db.write(write)

    async def top_creators(self, guild_id: int, *, limit: int = 10) -> list[Standing]:
        """Members with the most images made in a server (uploads not counted), but those who
        hid themselves."""
        rows = await self.db.fetchall(
            "SELECT u.discord_id, COUNT(*) AS made FROM images i "
            "JOIN users u ON u.id = i.user_id "
            "LEFT JOIN member_preferences p ON p.user_id = i.user_id "
            "WHERE i.guild_id = ? AND i.type = 'GENERATED' AND i.status = 'COMPLETED' "
            "AND u.discord_id IS NOT NULL AND COALESCE(p.leaderboard_hidden, 0) = 0 "
            "GROUP BY u.discord_id ORDER BY made DESC, u.discord_id LIMIT ?",
            (str(guild_id), limit),
        )
        return [Standing(int(r[0]), int(r[1])) for r in rows]

    async def top_holders(
        self, guild_id: int, *, per_server: bool, limit: int = 10
    ) -> list[Standing]:
        """Members with the most coins: in the server's own wallets (`per_server`), or in the
        global wallets of the members who made or asked for anything in this server."""
        hidden = (
            "LEFT JOIN member_preferences p ON p.user_id = w.user_id "
            "WHERE COALESCE(p.leaderboard_hidden, 0) = 0 AND u.discord_id IS NOT NULL "
        )
        if per_server:
            where = "AND w.guild_id = ?"
            params: tuple[object, ...] = (str(guild_id), limit)
        else:
            where = (
                "AND w.guild_id IS NULL AND w.user_id IN (SELECT user_id FROM jobs "
                "WHERE guild_id = ? UNION SELECT user_id FROM images WHERE guild_id = ?)"
            )
            params = (str(guild_id), str(guild_id), limit)
        rows = await self.db.fetchall(
            "SELECT u.discord_id, w.coins FROM wallets w JOIN users u ON u.id = w.user_id "
            f"{hidden}{where} AND w.coins > 0 ORDER BY w.coins DESC, u.discord_id LIMIT ?",
            params,
        )
        return [Standing(int(r[0]), int(r[1])) for r in rows]
