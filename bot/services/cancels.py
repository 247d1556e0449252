"""Cancelling a paid job that is still waiting for a worker (issue 23, item 3).

Who may: the member who ordered it, a moderator of its own server, a bot admin (on Discord);
through the API or the web gallery, a member's own jobs only (anyone else's is "not found",
as every personal resource there). What happens: the job ends FAILED with its refund, exactly
once, through the job engine (`JobEngine.cancel_waiting`); a job a worker has started may be
calling the API already and is not cancelled (nor refunded by the cancel).
"""

from __future__ import annotations

from dataclasses import replace

from bot.services.errors import JobNotFound
from bot.services.jobs import Cancelled, JobEngine
from bot.services.permissions import Actor, PermissionService, reaches_own

_UUID_CHARS = frozenset("0123456789abcdef-")


class CancelService:
    """`cancel(actor, job_id)` for every adapter."""

    def __init__(self, engine: JobEngine, permissions: PermissionService) -> None:
        self.engine = engine
        self.permissions = permissions

    async def cancel(self, actor: Actor, job_id: str, *, personal: bool = False) -> Cancelled:
        """Cancel the waiting job `job_id` for `actor` and refund its payer at once. Raises
        JobNotFound (no such job; with `personal`, anyone else's too), NotAllowed (someone
        else's, and not a moderator of its server), NotCancellable (started or ended)."""
        ref = job_id.strip().lower()
        row = await self.engine.jobs.get(ref) if _is_uuid(ref) else None
        if row is None:
            raise JobNotFound()
        if personal:
            if not reaches_own(actor, row.user_id, row.guild_id):
                raise JobNotFound()
            by_moderator = False
        else:
            by_moderator = self.permissions.check_cancel_job(actor, row.user_id, row.guild_id)
        key = "reason.cancelled_by_moderator" if by_moderator else "reason.cancelled"
        cancelled = await self.engine.cancel_waiting(row.id, {"key": key, "params": {}})
        return replace(cancelled, by_moderator=by_moderator)

    def estimate(self, job_id: str) -> float | None:
        """Seconds until the waiting job should start (see JobEngine.estimate)."""
        return self.engine.estimate(job_id)

    def estimate_new(self, position: int) -> float | None:
        """Seconds until a job about to be queued at `position` should start."""
        return self.engine.estimate_new(position)


def _is_uuid(text: str) -> bool:
    return len(text) == 36 and set(text) <= _UUID_CHARS
