"""ModelStateRepository: what every process of a deployment knows of Google's models
(migration 0009), so that one process learning something (the models list, a 404) is
learnt by all of them at once.

- `record_listing` stores the API's models list (and when it was read, in `bot_state`);
- `retire` marks a model gone after a 404 NOT_FOUND, exactly once for the deployment (the
  caller that retires it is the one that tells the owner);
- `is_retired` is the guard a reservation checks in its own transaction, so no process charges
  anyone for a model another process has just found gone;
- `refuse` remembers a size, ratio or thinking level the API refused for a model;
- `note_status` keeps what the API said of a model's life in an answer, once.

Rows are plain values; the service turns them into its own view.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage.db import Database, Transaction
from storage.timeutil import from_iso, to_iso, utcnow

#: `bot_state` key: when the models list was last read (ISO time).
LISTED_AT_KEY = "models_listed_at"
#: The text models the last listing held (JSON list of ids), for /describe's choice.
TEXT_MODELS_KEY = "text_models_listed"
#: A model retired by a 404 but still listed this much later is offered again (a 404 that
#: was a passing fault of Google's front end; the list is the second opinion).
RELISTED_AFTER = timedelta(hours=24)
#: What `refuse` may remember.
REFUSAL_KINDS = ("sizes", "ratios", "thinking")


@dataclass(frozen=True)
class ListedRow:
    """One image model of a listing, as stored."""

    model: str
    display_name: str
    methods: tuple[str, ...] = ()
    input_token_limit: int | None = None


@dataclass(frozen=True)
class ModelState:
    """What the deployment knows of one model."""

    model: str
    display_name: str | None = None
    listed: bool = False
    methods: tuple[str, ...] = ()
    input_token_limit: int | None = None
    listed_at: datetime | None = None
    retired_at: datetime | None = None
    retired_reason: str | None = None
    refused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notice: dict[str, Any] | None = None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True)
class Snapshot:
    """Every model's state and when the models list was last read (None: never)."""

    states: dict[str, ModelState]
    listed_at: datetime | None


def _state(row: Any) -> ModelState:
    refused_raw = json.loads(row["refused"] or "{}")
    refused = {
        kind: tuple(str(v) for v in values)
        for kind, values in refused_raw.items()
        if kind in REFUSAL_KINDS and isinstance(values, list)
    }
    return ModelState(
        model=row["model"],
        display_name=row["display_name"],
        listed=bool(row["listed"]),
        methods=tuple(json.loads(row["methods"] or "[]")),
        input_token_limit=row["input_token_limit"],
        listed_at=from_iso(row["listed_at"]) if row["listed_at"] else None,
        retired_at=from_iso(row["retired_at"]) if row["retired_at"] else None,
        retired_reason=row["retired_reason"],
        refused=refused,
        notice=json.loads(row["notice"]) if row["notice"] else None,
    )


_COLUMNS = (
    "model, display_name, listed, methods, input_token_limit, listed_at, retired_at, "
    "retired_reason, refused, notice"
)


class ModelStateRepository:
    """The `model_states` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def snapshot(self) -> Snapshot:
        """Every model's state, and when the list was last read (one round trip each)."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM model_states ORDER BY model")
        listed_at = await self.db.get_state(LISTED_AT_KEY)
        return Snapshot(
            states={state.model: state for state in map(_state, rows)},
            listed_at=from_iso(listed_at) if listed_at else None,
        )

    async def record_text_models(self, models: Sequence[str]) -> None:
        """The text models the key lists (for every process: /describe picks among them)."""
        await self.db.set_state(TEXT_MODELS_KEY, json.dumps(sorted(set(models))))

    async def text_models(self) -> list[str] | None:
        """The text models of the last listing (None: never listed)."""
        value = await self.db.get_state(TEXT_MODELS_KEY)
        if value is None:
            return None
        loaded = json.loads(value)
        return [str(m) for m in loaded] if isinstance(loaded, list) else None

    async def drop_text_model(self, model: str) -> None:
        """A text model answered 404: not offered until the next listing holds it."""
        listed = await self.text_models()
        if listed is not None and model in listed:
            await self.record_text_models([m for m in listed if m != model])

    async def record_listing(
        self, models: Sequence[ListedRow], *, at: datetime | None = None
    ) -> list[str]:
        """Store a listing: these models are listed (as of `at`), every other one is not.
        A model retired by a 404 more than RELISTED_AFTER ago that the list still shows is
        offered again; returns those models."""
        when = at or utcnow()
        stamp = to_iso(when)
        cutoff = to_iso(when - RELISTED_AFTER)

        async def body(tx: Transaction) -> list[str]:
            await tx.execute("UPDATE model_states SET listed = 0, updated_at = ?", (stamp,))
            relisted: list[str] = []
            for listed in models:
                await tx.execute(
                    "INSERT INTO model_states (model, display_name, listed, methods, "
                    "input_token_limit, listed_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?) "
                    "ON CONFLICT (model) DO UPDATE SET display_name = excluded.display_name, "
                    "listed = 1, methods = excluded.methods, "
                    "input_token_limit = excluded.input_token_limit, "
                    "listed_at = excluded.listed_at, updated_at = excluded.updated_at",
                    (
                        listed.model,
                        listed.display_name,
                        json.dumps(list(listed.methods)),
                        listed.input_token_limit,
                        stamp,
                        stamp,
                    ),
                )
                if "generateContent" not in listed.methods:
                    continue
                back = await tx.fetchall(
                    "UPDATE model_states SET retired_at = NULL, retired_reason = NULL "
                    "WHERE model = ? AND retired_at IS NOT NULL AND retired_at < ? "
                    "RETURNING model",
                    (listed.model, cutoff),
                )
                relisted.extend(row["model"] for row in back)
            await tx.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (LISTED_AT_KEY, stamp, stamp),
            )
            return relisted

        return await self.db.write(body)

    async def retire(self, model: str, reason: str, *, at: datetime | None = None) -> bool:
        """Mark `model` retired; True for the one call that did (it tells the owner), False
        when it already was."""
        stamp = to_iso(at or utcnow())

        async def body(tx: Transaction) -> bool:
            rows = await tx.fetchall(
                "INSERT INTO model_states (model, retired_at, retired_reason, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET "
                "retired_at = excluded.retired_at, retired_reason = excluded.retired_reason, "
                "updated_at = excluded.updated_at WHERE model_states.retired_at IS NULL "
                "RETURNING model",
                (model, stamp, reason[:500], stamp),
            )
            return bool(rows)

        return await self.db.write(body)

    async def refuse(self, model: str, kind: str, value: str) -> bool:
        """Remember that the API refused `value` (a size, ratio or thinking level: `kind` is
        "sizes", "ratios" or "thinking") for `model`; True when it is new."""
        if kind not in REFUSAL_KINDS:
            raise ValueError(f"not a refusal kind: {kind!r}")
        stamp = to_iso(utcnow())

        async def body(tx: Transaction) -> bool:
            current = await tx.fetchval(
                f"SELECT refused FROM model_states WHERE model = ?{tx.dialect.for_update}",
                (model,),
            )
            refused: dict[str, list[str]] = json.loads(current) if current else {}
            values = refused.setdefault(kind, [])
            if value in values:
                return False
            values.append(value[:40])
            await tx.execute(
                "INSERT INTO model_states (model, refused, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET refused = excluded.refused, "
                "updated_at = excluded.updated_at",
                (model, json.dumps(refused), stamp),
            )
            return True

        return await self.db.write(body)

    async def note_status(self, model: str, notice: dict[str, Any]) -> bool:
        """Keep what the API said of `model`'s life; True the first time this notice (the
        same stage and retirement time) is seen, so the owner is told once."""
        text = json.dumps(notice, sort_keys=True)
        stamp = to_iso(utcnow())

        async def body(tx: Transaction) -> bool:
            rows = await tx.fetchall(
                "INSERT INTO model_states (model, notice, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET notice = excluded.notice, "
                "updated_at = excluded.updated_at "
                "WHERE model_states.notice IS NULL OR model_states.notice <> excluded.notice "
                "RETURNING model",
                (model, text, stamp),
            )
            return bool(rows)

        return await self.db.write(body)

    async def first_notice(self, key: str) -> bool:
        """True for the one call that records notice `key` (in `bot_state`): the owner is
        told of it once for the deployment."""
        stamp = to_iso(utcnow())

        async def body(tx: Transaction) -> bool:
            rows = await tx.fetchall(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING RETURNING key",
                (f"model_notice:{key}"[:200], stamp, stamp),
            )
            return bool(rows)

        return await self.db.write(body)


async def is_retired(tx: Transaction, model: str) -> bool:
    """Inside a transaction: whether `model` has been retired for the deployment (the guard
    a reservation checks before it charges anyone)."""
    found = await tx.fetchval(
        "SELECT 1 FROM model_states WHERE model = ? AND retired_at IS NOT NULL", (model,)
    )
    return found is not None
