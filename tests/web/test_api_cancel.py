"""POST /api/v1/jobs/{id}/cancel and the estimated start in GET /api/v1/jobs/{id} (issue 23,
item 3): the same cancel as the Discord button (bot.services.cancels), refunded exactly once."""

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until
from tests.web.conftest import Web, assert_documented

GENERATE = "/api/v1/images/generate"
JOB = "/api/v1/jobs/{job_id}"
CANCEL = "/api/v1/jobs/{job_id}/cancel"


async def order(web: Web, token: str, prompt: str) -> str:
    _, body, _ = await web.call("POST", GENERATE, token, json={"prompt": prompt}, expect=202)
    return str(body["job"]["id"])


async def until_done(web: Web, token: str, job_id: str) -> None:
    async def done() -> bool:
        _, body, _ = await web.call("GET", f"/api/v1/jobs/{job_id}", token, expect=200)
        return body["status"] in ("COMPLETED", "FAILED")

    await until(done, f"job {job_id} done")


async def test_cancel_a_waiting_job_refunds_it_once(web: Web) -> None:
    h = web.h
    # A first job measures the API's latency (the estimated start needs it).
    alice = await web.token(h.alice)
    await until_done(web, alice, await order(web, alice, "warm up"))
    h.api.gate = gate = asyncio.Event()
    # Two slots and two lookahead workers: four jobs of others take every worker.
    others = [(await web.token(u), u) for u in (h.bob, h.mod)]
    busy = [(token, await order(web, token, "busy")) for token, _ in others for _ in range(2)]
    await until(lambda: h.app.engine.running == 4, "every worker busy")
    job_id = await order(web, alice, "wait for me")
    _, waiting, _ = await web.call("GET", f"/api/v1/jobs/{job_id}", alice, expect=200)
    assert_documented(waiting, JOB, "get", 200)
    assert waiting["status"] == "PENDING" and waiting["position"] == 1
    assert datetime.fromisoformat(waiting["estimated_start"]).tzinfo is not None
    # Someone else's job is not found (as in GET), and stays queued.
    status, body, _ = await web.call("POST", f"/api/v1/jobs/{job_id}/cancel", others[0][0])
    assert status == 404 and body["error"]["code"] == "error_job_not_found"
    # Cancelled twice at once: refunded once, the other answer says it has ended.
    answers = await asyncio.gather(
        *(web.call("POST", f"/api/v1/jobs/{job_id}/cancel", alice) for _ in range(2))
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200, 409], answers
    ok = next(body for status, body, _ in answers if status == 200)
    assert_documented(ok, CANCEL, "post", 200)
    assert ok["balance"] == 200  # 300 - the warm-up's 100; this job's 100 came back
    assert ok["job"]["status"] == "FAILED"
    assert ok["job"]["error"]["code"] == "reason_cancelled"
    assert ok["job"]["refund"] == {"coins": 100, "owed": 0}
    refused = next(body for status, body, _ in answers if status == 409)
    assert refused["error"]["code"] == "cancel_finished"
    # A job a worker has (it may be calling the API) is not cancelled.
    running_token, running_id = busy[0]
    status, body, _ = await web.call("POST", f"/api/v1/jobs/{running_id}/cancel", running_token)
    assert status == 409 and body["error"]["code"] == "cancel_started"
    # Malformed and unknown ids.
    status, body, _ = await web.call("POST", "/api/v1/jobs/nope/cancel", alice)
    assert status == 404
    gate.set()
    for token, busy_id in busy:
        await until_done(web, token, busy_id)
    await h.settle()
    assert await h.balance(h.alice) == 200
    refunds = await h.app.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'", (job_id,)
    )
    assert refunds == 1
    # Only the jobs that ran called the API.
    assert [r.prompt for r in h.api.requests].count("wait for me") == 0
    await assert_ledger_consistent(h.app.db)
