"""Start-up reconciliation between the database and object storage.

A crash between writing an image's objects and recording them, or a failed object delete after
a row was deleted, can leave objects that no row points to. This sweep deletes them, and
reports COMPLETED rows whose image object is missing. It must run while no job is writing
objects (before the generation workers start), or it could delete a job's fresh objects.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from storage.images import ImageRepository
from storage.objects import ObjectStore, StorageError

log = logging.getLogger(__name__)

# Only prefixes the bot owns; anything else in a shared bucket is left alone.
OWNED_PREFIXES = ("images/", "thumbnails/", "inputs/")


@dataclass(frozen=True)
class Reconciliation:
    objects_seen: int
    orphans_deleted: int
    missing_objects: list[str]


async def reconcile_storage(images: ImageRepository, store: ObjectStore) -> Reconciliation:
    """Delete objects no row references; list completed images whose object is gone."""
    referenced = await images.referenced_keys()
    seen = 0
    deleted = 0
    present: set[str] = set()
    for prefix in OWNED_PREFIXES:
        for key in await store.list(prefix):
            seen += 1
            present.add(key)
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
    return Reconciliation(seen, deleted, missing)
