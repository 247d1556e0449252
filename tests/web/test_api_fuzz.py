"""The API fuzzed against its own document: Schemathesis (its CLI, in a subprocess) reads the
served /api/v1/openapi.json of the real bot on loopback and sends every operation
schema-derived and malformed requests with a real token over real data. Any 5xx, or any answer
whose status, content type, headers or body the document does not describe, fails the test.

Bounded and reproducible: a fixed seed, a fixed number of examples per operation, no example
database (so a run never depends on an earlier one)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from tests.cogs.conftest import make_harness
from tests.web.conftest import Web
from web.openapi import openapi_document

# FUZZ_SEED and FUZZ_EXAMPLES explore further by hand (the defaults are what `make test` runs).
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
# Not `negative_data_rejection`: in a multipart form every field is text, so a "number" or an
# "array" Schemathesis puts in a text field arrives as legitimate text the API rightly keeps.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
# The whole run's ceiling (it takes well under a minute on the 2-core CI machine).
DEADLINE = 240


async def test_the_api_is_fuzz_clean(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(
            stack, tmp_path, web=True, api_rate_limit=100_000,
            rate_limits="generate=10000,upload=10000,other=10000",
            generation_cost=1, starter_coins=1_000_000, max_grant=1_000_000,
        )  # fmt: skip
        http = await stack.enter_async_context(aiohttp.ClientSession())
        web = Web(h, http)
        token = await web.token(h.alice)
        await web.upload(h.alice, 3)
        report = tmp_path / "schemathesis.json"
        command = [
            str(Path(sys.executable).with_name("st")), "run",
            f"{web.url}/api/v1/openapi.json", "--url", web.url,
            "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(EXAMPLES), "--seed", str(SEED),
            "--generation-database", "none", "--workers", "1",
            "--request-timeout", "20", "--no-color",
            "--report", "json", "--report-json-path", str(report),
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )  # fmt: skip
        async with asyncio.timeout(DEADLINE):
            output, _ = await process.communicate()
        text = output.decode(errors="replace")
        print(text[-6000:])
        assert process.returncode == 0, text[-20000:]
        result = json.loads(report.read_text())
        cases = result["test_cases"]
        print(
            f"schemathesis {result['schemathesis_version']}: seed {result['seed']}, "
            f"{result['operations']['tested']} operations, {cases['generated']} cases, "
            f"{cases['with_failures']} with failures, {cases['errored']} errored, "
            f"{result['running_time']:.1f} s"
        )
        # Every documented operation but the document itself (a path may have several).
        operations = sum(
            len([method for method in item if method != "parameters"])
            for path, item in openapi_document("")["paths"].items()
            if path != "/api/v1/openapi.json"
        )
        assert result["operations"]["tested"] == operations
        assert cases["generated"] >= 300 and cases["with_failures"] == cases["errored"] == 0
        assert result["failures"] == [] and result["errors"] == []
        await h.settle()
