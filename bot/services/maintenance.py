"""Start-up reconciliation between the database and object storage.

A crash between writing an image's objects and recording them, or a failed object delete after
a row was deleted, can leave objects that no row points to. This sweep deletes them, and
reports COMPLETED rows whose image object is missing. Objects being written right now, in
any process, are recorded as intents before their first byte is written (storage/leases.py):
the sweep leaves those alone, so it may run while jobs and uploads run. It runs in one process
at a time (the one with shard 0, under a lock in the database).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from storage.images import ImageRepository
from storage.leases import LeaseRepository
from storage.objects import ObjectStore, StorageError

log = logging.getLogger(__name__)

# Only prefixes the bot owns; anything else in a shared bucket is left alone.
OWNED_PREFIXES = ("images/", "thumbnails/", "inputs/")


@dataclass(frozen=True)
class Reconciliation:
    objects_seen: int
    orphans_deleted: int
    missing_objects: list[str]


async def reconcile_storage(
    images: ImageRepository, store: ObjectStore, leases: LeaseRepository | None = None
) -> Reconciliation:
    """Delete objects no row references and no intent protects; list completed images whose
    object is gone."""
    listed = [key for prefix in OWNED_PREFIXES for key in await store.list(prefix)]
    # After listing, intents before rows: an object listed was put after its intent was
    # recorded, and its intent goes only when its row commits, so it is seen in one or the
    # other.
    protected = await leases.intent_keys() if leases is not None else set()
    referenced = await images.referenced_keys() | protected
    deleted = 0
    present = set(listed)
    for key in listed:
        if key not in referenced:
            with contextlib.suppress(StorageError):
                await store.delete(key)
                deleted += 1
    missing = sorted(await images.completed_keys() - present)
    if deleted or missing:
        log.warning(
            "storage reconciliation: deleted %d orphan object(s); %d completed image(s) "
            "missing their object",
            deleted,
            len(missing),
        )
    return Reconciliation(len(listed), deleted, missing)
