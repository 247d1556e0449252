"""Typed events: services publish what happened, adapters subscribe to what they show.

A service never knows who listens (the Discord cogs, the web, a test): it publishes an event
object, and every handler subscribed to that event's type is called in turn. A failing
handler is logged and never breaks the publisher or the other handlers.

    bus = EventBus()
    bus.subscribe(ModelNotice, cog.tell_owner)
    await bus.publish(ModelNotice(kind="retired", model="gemini-3-pro-image", ...))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from bot.services.catalog import ModelCatalog
    from storage.jobs import Refund
    from storage.models import Image

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None]]


class EventBus:
    """Handlers by event type; `publish` awaits each of them."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Handler]] = {}
        #: Every event published, newest last, a bounded few (for logs and tests).
        self.history: list[object] = []

    def subscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Call `handler` with every event of type `kind` (subclasses included)."""
        self._handlers.setdefault(kind, []).append(handler)

    def unsubscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Stop calling `handler` (no error if it wasn't subscribed)."""
        handlers = self._handlers.get(kind, [])
        if handler in handlers:
            handlers.remove(handler)

    async def publish(self, event: object) -> None:
        """Hand `event` to every handler of its type; failures are logged, not raised."""
        self.history.append(event)
        del self.history[:-100]
        for kind in type(event).__mro__:
            for handler in list(self._handlers.get(kind, ())):
                try:
                    await handler(event)
                except Exception:
                    log.exception("handler %r of %s failed", handler, type(event).__name__)


@dataclass(frozen=True)
class ModelNotice:
    """Something the bot's owner must hear about the image models, once per deployment.

    - "retired": `model` answered 404 NOT_FOUND; `replacement` is what the bot uses instead
      (NANOBANANA_MODEL=auto), or None when requests for it are refused (a pinned model);
    - "replaced": the settings name `model`, which Google has shut down (`shutdown`); the bot
      uses `replacement`, its successor, until the owner changes the setting;
    - "ending": the API says `model` is on its way out (`detail`: its stage and retirement
      time from the answer's modelStatus);
    - "none_usable": the key can use none of the configured models: image requests are
      refused (free) until the owner fixes the settings or the key.
    """

    kind: Literal["retired", "replaced", "ending", "none_usable"]
    model: str
    name: str
    replacement: str | None = None
    replacement_name: str | None = None
    shutdown: date | None = None
    detail: str | None = None


@dataclass(frozen=True)
class CatalogChanged:
    """The models members may use changed (a listing, a 404, a refused setting): budgets
    re-read which prices apply to which model."""

    catalog: ModelCatalog


@dataclass(frozen=True)
class JobsRecovered:
    """Jobs of processes that died were failed and refunded (by this process's sweep): their
    members are told where they asked."""

    refunds: tuple[Refund, ...]


@dataclass(frozen=True)
class ImageCreated:
    """An image was made or uploaded and stored (the moderation log posts it)."""

    image: Image


@dataclass(frozen=True)
class JobFinished:
    """A paid job ended, in this process (what /metrics counts):

    - "completed": stored and delivered;
    - "failed": failed while running (`reason` is its message key, e.g. "reason.blocked");
    - "cancelled": refunded before it ran (its interaction could not be answered);
    - "interrupted": a job of a process that died, refunded here by the lease sweep.

    `refunded`: the coins returned to the wallet that paid (0 when none were, or for a free
    job); `owed`: a refund that could not be applied (over the balance cap).
    """

    job_id: str
    outcome: Literal["completed", "failed", "cancelled", "interrupted"]
    reason: str | None = None
    refunded: int = 0
    owed: int = 0
