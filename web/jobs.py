"""Following API jobs: a JobListener that is not Discord. The outcome of each recent job (its
images, or why it failed and what was refunded) is kept in memory for GET /api/v1/jobs/{id};
the job's row in the database stays the authority on its status."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bot.services.generation import Failure, Job, Result

# Outcomes kept (the newest); older jobs still report their status and refund from the row.
KEEP = 2000


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the generation service told its listener."""

    image_ids: tuple[str, ...] = ()
    failure: Failure | None = None


class JobTracker:
    """Outcomes of recent API jobs by job id."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()

    def listener(self) -> ApiJobListener:
        return ApiJobListener(self)

    def record(self, job_id: str, outcome: Outcome) -> None:
        self._outcomes[job_id] = outcome
        self._outcomes.move_to_end(job_id)
        while len(self._outcomes) > self.keep:
            self._outcomes.popitem(last=False)

    def outcome(self, job_id: str) -> Outcome | None:
        return self._outcomes.get(job_id)


class ApiJobListener:
    """The JobListener of a job asked for over HTTP: nothing is sent anywhere; the client
    polls the job."""

    def __init__(self, tracker: JobTracker) -> None:
        self.tracker = tracker

    async def queued(self, job: Job, position: int) -> None:
        return None

    async def started(self, job: Job) -> None:
        return None

    async def completed(self, job: Job, result: Result) -> None:
        ids = (result.image.id, *(extra.image.id for extra in result.extras))
        self.tracker.record(job.id, Outcome(image_ids=ids))

    async def failed(self, job: Job, failure: Failure) -> None:
        self.tracker.record(job.id, Outcome(failure=failure))
