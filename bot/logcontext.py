"""Ids that log lines carry (`LOG_FORMAT=json`): the interaction or job a task is working on.

A task sets them once (`bind_log`); every line it logs afterwards, and every task it starts,
carries them (context variables are copied into new tasks). No Discord, no I/O: services use
it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType

_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=MappingProxyType({}))


def bind_log(**ids: object) -> None:
    """Add ids (e.g. interaction_id, job_id) to the running task's log context."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in ids.items() if v is not None}})


def set_log_context(ids: Mapping[str, str]) -> None:
    """Replace the running task's log context (a worker taking its next job)."""
    _CONTEXT.set(dict(ids))


def log_context() -> Mapping[str, str]:
    """The running task's log context."""
    return _CONTEXT.get()
