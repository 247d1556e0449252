"""Secrets never reach log output."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactSecrets

TOKEN_SHAPED = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcdE.abcdefghijklmnopqrstuvwxyz0123456789"
KEY_SHAPED = "AIza" + "B" * 35


def test_token_and_key_shapes_and_configured_secrets_are_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.redaction")
    redactor = RedactSecrets(("my-s3-secret-value",))
    caplog.handler.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("token %s key %s", TOKEN_SHAPED, KEY_SHAPED)
            logger.info("url https://x.test/?secret=my-s3-secret-value&ok=1")
    finally:
        caplog.handler.removeFilter(redactor)
    text = caplog.text
    assert TOKEN_SHAPED not in text and KEY_SHAPED not in text
    assert "my-s3-secret-value" not in text
    assert text.count("[redacted]") == 3 and "ok=1" in text


def test_exception_text_and_tracebacks_are_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception whose message (or a frame's source line) holds a secret: the traceback a
    handler prints must be as clean as the message."""
    logger = logging.getLogger("test.redaction.exceptions")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets(("my-s3-secret-value",)))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"GET https://x.test/?key={KEY_SHAPED}&s=my-s3-secret-value failed")
        except RuntimeError:
            logger.exception("request failed for token %s", TOKEN_SHAPED)
        logger.error("again", exc_info=ValueError(f"bad token {TOKEN_SHAPED}"))
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and "ValueError" in err
    for secret in (TOKEN_SHAPED, KEY_SHAPED, "my-s3-secret-value"):
        assert secret not in err
    assert err.count("[redacted]") >= 5


def test_json_lines_carry_the_task_ids_and_stay_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """LOG_FORMAT=json: one object a line, with the ids bound in the running task (an
    interaction's, a job's), and secrets masked in the message and the traceback alike."""
    import asyncio
    import contextvars
    import json

    from bot.logcontext import bind_log, set_log_context
    from bot.logs import JsonFormatter

    logger = logging.getLogger("test.json")
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(("my-s3-secret-value",)))
    logger.addHandler(handler)
    logger.propagate = False

    async def interaction() -> None:
        bind_log(interaction_id=1234, command="generate")
        logger.info("reserved with key %s", KEY_SHAPED)

        async def job() -> None:  # a task started by the interaction's task carries its ids
            bind_log(job_id="job-1")
            try:
                raise RuntimeError("s3 said my-s3-secret-value")
            except RuntimeError:
                logger.exception("store failed")

        await asyncio.create_task(job())

    try:
        contextvars.Context().run(asyncio.run, interaction())
        set_log_context({})
        logger.warning("no ids here")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == [
        "reserved with key [redacted]", "store failed", "no ids here",
    ]  # fmt: skip
    assert lines[0]["interaction_id"] == "1234" and lines[0]["command"] == "generate"
    assert "job_id" not in lines[0]
    assert lines[1]["interaction_id"] == "1234" and lines[1]["job_id"] == "job-1"
    assert "RuntimeError" in lines[1]["exception"]
    assert "my-s3-secret-value" not in lines[1]["exception"]
    assert "interaction_id" not in lines[2] and lines[2]["level"] == "WARNING"
    assert lines[0]["time"].endswith("+00:00") and lines[0]["logger"] == "test.json"
