"""Paid jobs of any kind: the engine (queue, workers, API slots, leases, money) and the values
every kind shares. A kind (bot.services.generation's images, bot.services.describe's captions)
says what a job costs and does; the engine does the rest, the same way for all of them."""

from bot.services.jobs.engine import INTERRUPTED, JobEngine, report_owed
from bot.services.jobs.kind import JobKind
from bot.services.jobs.slots import ApiSlot, StoppedBeforeStart
from bot.services.jobs.values import (
    Admission,
    Cancelled,
    Failure,
    Job,
    JobListener,
    Priced,
    recorded_refund,
)

__all__ = [
    "INTERRUPTED",
    "Admission",
    "ApiSlot",
    "Cancelled",
    "Failure",
    "Job",
    "JobEngine",
    "JobKind",
    "JobListener",
    "Priced",
    "StoppedBeforeStart",
    "recorded_refund",
    "report_owed",
]
