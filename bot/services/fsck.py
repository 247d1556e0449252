"""`python -m bot fsck [--repair]`: does the database agree with the object store, and does
the money add up?

Checks (each finding is one line for the owner):
- missing objects: an image row names an object (image, thumbnail, stored input) the store
  doesn't have. Not repairable here: the bytes are gone (restore them from a backup, or
  delete the image); a missing *thumbnail* is regenerated from the image.
- orphaned objects: an object under the bot's prefixes that no row names and no live upload or
  job is writing. `--repair` deletes those older than the grace period (younger ones may be an
  upload between its first byte and its row on a bot that runs older code; they are reported
  and left).
- thumbnails: an image without one, or whose thumbnail doesn't decode. `--repair` makes a new
  one from the image (under a new key: objects are never overwritten, a backup relies on that)
  and deletes the broken one.
- ledger, per wallet: the balance equals the sum of its ledger rows, the newest row's
  `balance_after` equals the balance, never negative; each job refunded at most once, only if
  it failed, and a failed paid job refunded (or its refund recorded as owed). `--repair`
  records an ADJUSTMENT row for a wallet whose rows don't add up to its balance (the balance
  the member has seen is kept; the row says fsck made it); the rest is reported.
- jobs left unfinished: a job whose process is gone (stranded) is failed and refunded exactly
  once through JobRepository.fail_and_refund, guarded on its lease, as the bot's own sweep does;
  jobs of live processes are listed and left alone.

Every repair is guarded where it writes, so `--repair` twice (or alongside a running bot)
changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath

from bot import imaging
from bot.services.maintenance import OWNED_PREFIXES
from storage import integrity
from storage.db import Database
from storage.images import ImageRepository
from storage.jobs import JobRepository
from storage.leases import LeaseRepository
from storage.library import LIBRARY_PREFIXES, library_keys
from storage.objects import DatedStore, ObjectNotFound, ObjectStore, StorageError, validate_key
from storage.timeutil import utcnow

#: Orphans younger than this are left by default (`--grace-hours`).
DEFAULT_GRACE = timedelta(hours=24)
#: What a stranded job's failure says (as the bot's own sweep says it).
STRANDED_ERROR = "interrupted: its process stopped (failed and refunded by fsck)"


class Check(StrEnum):
    MISSING = "missing object"
    ORPHAN = "orphaned object"
    THUMBNAIL = "thumbnail"
    LEDGER = "ledger"
    REFUND = "refund"
    STRANDED = "stranded job"
    RUNNING = "unfinished job"


@dataclass(frozen=True)
class Finding:
    """One thing found: what, about which object/row, and what was done (`repaired`) or why
    it was left (`left`). `problem` False: a fact, not a fault (a job that is running)."""

    check: Check
    subject: str
    detail: str
    repaired: str | None = None
    left: str | None = None
    problem: bool = True

    def line(self) -> str:
        text = f"{self.check.value.upper()} {self.subject}: {self.detail}"
        if self.repaired:
            text += f" -> repaired: {self.repaired}"
        elif self.left:
            text += f" ({self.left})"
        return text


@dataclass
class FsckReport:
    """What fsck saw and did."""

    repair: bool
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def repaired(self) -> list[Finding]:
        return [f for f in self.problems if f.repaired]

    @property
    def left(self) -> list[Finding]:
        return [f for f in self.problems if not f.repaired]

    @property
    def exit_code(self) -> int:
        """0: nothing wrong is left; 1: something is (the lines say what)."""
        return 1 if self.left else 0

    def lines(self) -> list[str]:
        seen = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        out = [f"checked {seen}"]
        out.extend(f.line() for f in self.findings)
        if not self.problems:
            out.append("fsck: everything agrees")
        elif self.repair:
            out.append(
                f"fsck: {len(self.problems)} problem(s): {len(self.repaired)} repaired, "
                f"{len(self.left)} left"
            )
        else:
            fixable = sum(1 for f in self.problems if f.left is None)
            out.append(
                f"fsck: {len(self.problems)} problem(s); {fixable} can be repaired with "
                "`python -m bot fsck --repair`"
            )
        return out


class Fsck:
    """One run of the checks (and repairs) over a database and its object store."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        *,
        repair: bool = False,
        grace: timedelta = DEFAULT_GRACE,
        thumbnail_size: int = 256,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.repair = repair
        self.grace = grace
        self.thumbnail_size = thumbnail_size
        self.jobs = JobRepository(db)
        self.leases = LeaseRepository(db)
        self.images = ImageRepository(db)
        self.say = progress or (lambda line: None)
        self.report = FsckReport(repair)

    def _add(self, finding: Finding) -> None:
        self.report.findings.append(finding)

    async def run(self) -> FsckReport:
        """Every check, in an order where one repair can't hide another fault: objects first
        (thumbnails regenerated there), then money, then jobs (a refund adds ledger rows)."""
        self.say("checking objects")
        await self._objects()
        self.say("checking wallets and their ledgers")
        await self._ledger()
        self.say("checking unfinished jobs")
        await self._jobs()
        return self.report

    # Objects -----------------------------------------------------------------------------

    async def _objects(self) -> None:
        prefixes = (*OWNED_PREFIXES, *LIBRARY_PREFIXES)
        listed = {key for prefix in prefixes for key in await self.store.list(prefix)}
        # After listing, intents before rows (as the start-up reconciliation reads them): an
        # object being written is seen in one or the other.
        protected = await self.leases.intent_keys()
        rows = await integrity.image_keys(self.db)
        # What the bot's own storage sweep keeps (ImageRepository.referenced_keys: the one
        # list of what rows name, whatever table names it), plus each row's keys read here.
        referenced = _keys_of(rows) | await self.images.referenced_keys()
        self.report.checked["images"] = len(rows)
        self.report.checked["objects"] = len(listed)
        for row in rows:
            image_missing = row.storage_key is not None and row.storage_key not in listed
            if image_missing:
                self._add(Finding(
                    Check.MISSING, str(row.storage_key), f"the file of image {row.image_id} is "
                    "gone", left="restore it from a backup, or delete the image",
                ))  # fmt: skip
            for key in row.other_keys:
                if key not in listed:
                    self._add(Finding(
                        Check.MISSING, key, f"an input of image {row.image_id} is gone (its "
                        "Reroll and Edit can't use it)", left="restore it from a backup",
                    ))  # fmt: skip
            if row.storage_key is not None and not image_missing:
                await self._thumbnail(row, listed)
        for owner, keys in sorted((await library_keys(self.db)).items()):
            kind, _, row_id = owner.partition(":")
            for key in sorted(keys - listed):
                self._add(Finding(
                    Check.MISSING, key, f"an image of the {kind} {row_id} is gone (it is sent "
                    "without it)", left="restore it from a backup, or save the "
                    f"{kind} again",
                ))  # fmt: skip
        old: list[tuple[str, str]] = []
        for key in sorted(listed - referenced - protected):
            found = await self._orphan(key)
            if found is not None:
                old.append((key, found))
        if old and self.repair:
            # Read again just before deleting: a row (or an intent) that appeared since the
            # listing keeps its object.
            keep = await self.leases.intent_keys() | await self.images.referenced_keys()
            for key, detail in old:
                if key not in keep:
                    await self._delete_orphan(key, detail)

    async def _thumbnail(self, row: integrity.ImageKeys, listed: set[str]) -> None:
        assert row.storage_key is not None
        if row.thumbnail_key is None:
            detail = f"image {row.image_id} has no thumbnail"
        elif row.thumbnail_key not in listed:
            detail = f"the thumbnail {row.thumbnail_key} of image {row.image_id} is missing"
        else:
            try:
                data = await self.store.get(row.thumbnail_key)
                await asyncio.to_thread(imaging.probe_image, data)
                return
            except imaging.ImageProblem:
                detail = f"the thumbnail {row.thumbnail_key} of image {row.image_id} is broken"
            except ObjectNotFound:
                detail = f"the thumbnail {row.thumbnail_key} of image {row.image_id} is missing"
        if not self.repair:
            self._add(Finding(Check.THUMBNAIL, row.image_id, detail))
            return
        try:
            image = await self.store.get(row.storage_key)
            thumb = await asyncio.to_thread(imaging.make_thumbnail, image, self.thumbnail_size)
        except (imaging.ImageProblem, StorageError) as error:
            self._add(Finding(Check.THUMBNAIL, row.image_id, detail,
                              left=f"the image itself can't be read: {error}"))  # fmt: skip
            return
        key = _fresh_thumbnail_key(row.storage_key)
        await self.store.put(key, thumb, "image/webp")
        old = await integrity.set_thumbnail(self.db, row.image_id, key, self.store.public_url(key))
        if old and old != key:
            with contextlib.suppress(StorageError):
                await self.store.delete(old)
        self._add(Finding(Check.THUMBNAIL, row.image_id, detail,
                          repaired=f"new thumbnail {key}"))  # fmt: skip

    async def _orphan(self, key: str) -> str | None:
        """An object no row names: reported; its description when it is old enough to be
        deleted by a repair."""
        age = await self._age(key)
        if age is None:
            return None  # gone since it was listed (deleted with its row meanwhile)
        detail = f"no row points to it ({_age_text(age)} old)"
        if age < self.grace:
            young = f"younger than the grace period of {_age_text(self.grace)}"
            self._add(Finding(Check.ORPHAN, key, detail, problem=False, left=young))
            return None
        if not self.repair:
            self._add(Finding(Check.ORPHAN, key, detail))
            return None
        return detail

    async def _delete_orphan(self, key: str, detail: str) -> None:
        try:
            await self.store.delete(key)
        except StorageError as error:
            self._add(Finding(Check.ORPHAN, key, detail, left=f"delete failed: {error}"))
            return
        self._add(Finding(Check.ORPHAN, key, detail, repaired="deleted"))

    async def _age(self, key: str) -> timedelta | None:
        if not isinstance(self.store, DatedStore):
            return timedelta(0)  # unknown: treated as new, never deleted
        try:
            written: datetime = await self.store.modified(key)
        except ObjectNotFound:
            return None
        return max(timedelta(0), utcnow() - written)

    # Money -------------------------------------------------------------------------------

    async def _ledger(self) -> None:
        count, drifts = await integrity.wallet_drifts(self.db)
        self.report.checked["wallets"] = count
        for drift in drifts:
            subject = f"wallet {drift.wallet_id}"
            fixable = drift.difference != 0 and drift.coins >= 0
            if not fixable:
                self._add(Finding(Check.LEDGER, subject, drift.problem(),
                                  left="check its history with /coins; not changed"))  # fmt: skip
            elif not self.repair:
                self._add(Finding(Check.LEDGER, subject, drift.problem()))
            else:
                delta = await integrity.settle_drift(self.db, drift.wallet_id)
                done = (
                    f"ADJUSTMENT row of {delta:+d} coins recorded (balance kept)"
                    if delta is not None
                    else "already consistent"
                )
                self._add(Finding(Check.LEDGER, subject, drift.problem(), repaired=done))
        for problem in await integrity.refund_problems(self.db):
            self._add(Finding(Check.REFUND, f"job {problem.job_id}", problem.problem,
                              left="not changed: settle it with /grant if it is owed"))  # fmt: skip

    # Jobs --------------------------------------------------------------------------------

    async def _jobs(self) -> None:
        unfinished = await self.jobs.list_unfinished()
        stranded = {job.id for job in await self.jobs.expired(limit=100_000)}
        self.report.checked["unfinished jobs"] = len(unfinished)
        for job in unfinished:
            subject = f"job {job.id}"
            detail = f"{job.kind} job of {job.cost} coins, {job.status.value}"
            if job.id not in stranded:
                self._add(Finding(Check.RUNNING, subject, detail + ", its process is running",
                                  problem=False, left="left to its process"))  # fmt: skip
                continue
            detail += ", its process is gone"
            if not self.repair:
                self._add(Finding(Check.STRANDED, subject, detail))
                continue
            refund = await self.jobs.fail_and_refund(
                job.id, STRANDED_ERROR, interrupted=True, only_if_expired=True,
                reason={"key": "reason.shutdown", "params": {}},
            )  # fmt: skip
            if refund is None:
                done = "already ended meanwhile"
            elif refund.owed:
                done = f"failed; its refund of {refund.owed} coins is owed (balance cap)"
            else:
                done = f"failed and {refund.refunded} coins refunded"
            self._add(Finding(Check.STRANDED, subject, detail, repaired=done))


def _fresh_thumbnail_key(storage_key: str) -> str:
    """A new thumbnail key for an image (`thumbnails/<its path>-<random>.webp`): never the key
    of an existing object."""
    path = PurePosixPath(storage_key)
    parts = path.parts[1:] if path.parts and path.parts[0] == "images" else path.parts
    stem = PurePosixPath(*parts).with_suffix("")
    return validate_key(f"thumbnails/{stem}-fsck{uuid.uuid4().hex[:6]}.webp")


def _keys_of(rows: list[integrity.ImageKeys]) -> set[str]:
    keys: set[str] = set()
    for row in rows:
        keys.update(k for k in (row.storage_key, row.thumbnail_key) if k)
        keys.update(row.other_keys)
    return keys


def _age_text(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 7200:
        return f"{seconds // 3600} hours"
    return f"{max(0, seconds // 60)} minutes"


async def run_fsck(
    db: Database,
    store: ObjectStore,
    *,
    repair: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    progress: Callable[[str], None] | None = None,
) -> FsckReport:
    """Check (and with `repair`, fix what is safe to fix); the report."""
    return await Fsck(db, store, repair=repair, grace=grace, progress=progress).run()
