"""What a kind of paid job provides to the engine (an image job, a caption...).

The engine owns everything that is the same for every kind: admission, the money (reserve,
refund exactly once), the queue, the workers and their supervisor, the API slots, the leases
and the sweep of dead processes' jobs, and the shutdown. A kind says what its request costs
and how it is recorded (`price`), what calling the model means for it (`run`) and what
finishing means (`finish`: deliver, store what it made, complete the job in the same
transaction as its own rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.services.jobs.values import Job, Priced

if TYPE_CHECKING:
    from bot.services.jobs.engine import JobEngine
    from bot.services.members import Payer

R = TypeVar("R")


class JobKind(Protocol[R]):
    """A kind of paid job."""

    #: Stored in `jobs.kind`.
    name: str

    def price(self, payer: Payer, request: R) -> Priced[R]:
        """Check the request (in memory, raising a UserFacingError) and price it for this
        payer: the request as it will run, its cost, its record, the budgets' claim."""
        ...

    async def run(self, job: Job[R], engine: JobEngine, *, model_retired: bool) -> Any:
        """The job's call to the model (the engine marked it PROCESSING; `model_retired`:
        the database said just now that its model was retired). Returns what `finish` needs,
        or None when the job ended here (the kind called `engine.fail`)."""
        ...

    async def finish(self, job: Job[R], outcome: Any, engine: JobEngine) -> None:
        """Deliver and store what the model made, completing the job (in the transaction that
        writes the kind's own rows). Raising fails the job with its refund."""
        ...
