"""Errors the data layer raises; callers turn them into user messages."""

from __future__ import annotations

from datetime import datetime


class StorageLayerError(Exception):
    """Base class for data-layer errors with a meaning for the caller."""


class DatabaseError(StorageLayerError):
    """A database problem that callers can report (bad migration, closed database...)."""


class MigrationError(DatabaseError):
    """A migration file is malformed, or an applied one was edited."""


class DatabaseBusy(DatabaseError):
    """The database can't take the operation now, and nothing was written: a SQLite file
    locked by another process, a PostgreSQL server restarting or unreachable, a transaction
    that lost a serialization race. Trying again later may work (both backends raise this)."""


class ConstraintViolation(DatabaseError):
    """A statement broke a constraint of the schema (CHECK, UNIQUE, FOREIGN KEY): a bug in the
    caller, or a race the repository did not expect (both backends raise this)."""


class NotFound(StorageLayerError):
    """The user or image does not exist."""


class InsufficientCoins(StorageLayerError):
    """A debit would take the balance below zero."""

    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"balance {balance} is less than the cost {cost}")
        self.balance = balance
        self.cost = cost


class TooManyActiveJobs(StorageLayerError):
    """The member already has `limit` unfinished jobs across every process."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"already {limit} unfinished job(s)")
        self.limit = limit


class ModelRetired(StorageLayerError):
    """The job's model was retired for the deployment (a 404 seen by some process): nothing
    was charged."""

    def __init__(self, model: str) -> None:
        super().__init__(f"model {model} is retired")
        self.model = model


class ObjectsReclaimed(StorageLayerError):
    """Objects this process was writing were reclaimed (deleted) by another process, which
    took it for dead when its lease lapsed: the row that would point to them is refused."""


class AlreadyClaimed(StorageLayerError):
    """The daily coins of this wallet were claimed too recently; `claimed_at` says when."""

    def __init__(self, claimed_at: datetime) -> None:
        super().__init__(f"already claimed at {claimed_at.isoformat()}")
        self.claimed_at = claimed_at


class InvalidAmount(StorageLayerError, ValueError):
    """An amount that is not a positive integer within bounds."""


class BalanceOverflow(StorageLayerError):
    """A credit would take the balance past the cap (the configured maximum balance, or at
    worst the largest storable integer)."""

    def __init__(
        self, message: str, *, balance: int = 0, amount: int = 0, held: int = 0, cap: int = 0
    ) -> None:
        super().__init__(message)
        self.balance = balance
        self.amount = amount
        self.held = held
        self.cap = cap


class TransferLimitReached(StorageLayerError):
    """A payment would take what the wallet paid others in the window past the daily limit;
    `sent` is what it paid already."""

    def __init__(self, sent: int, limit: int) -> None:
        super().__init__(f"paid {sent} of a daily limit of {limit}")
        self.sent = sent
        self.limit = limit


class InvalidTransition(StorageLayerError):
    """An image status change that the job lifecycle does not allow."""

    def __init__(self, image_id: str, current: str, target: str) -> None:
        super().__init__(f"image {image_id}: {current} -> {target} is not allowed")
        self.image_id = image_id
        self.current = current
        self.target = target


class InvalidCursor(StorageLayerError, ValueError):
    """A pagination cursor that this code did not produce."""
