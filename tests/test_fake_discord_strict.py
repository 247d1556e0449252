"""The fake Discord is as strict as Discord: the spec, deadlines, rate limits, upload limits,
message limits, and what it keeps of uploads. Raw HTTP where the answer itself is the point;
a real discord.py bot where discord.py's reaction is."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_server import (
    ACK_DEADLINE,
    TOKEN_LIFETIME,
    FakeChannel,
    FakeDiscord,
    InteractionRecord,
    running_bot,
)
from tests.fakes.discord_validation import ALLOWANCES, SPEC_DIR, load_spec

INT64_MAX = 2**63 - 1


async def call(
    fake: FakeDiscord,
    method: str,
    path: str,
    *,
    body: Any = None,
    form: aiohttp.FormData | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request to the fake's REST API: (status, headers, JSON body or None)."""
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["json"] = body
    elif form is not None:
        kwargs["data"] = form
    elif raw is not None:
        kwargs.update(data=raw, headers={"Content-Type": "application/json"})
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{fake.base_url}/api/v10{path}", **kwargs) as resp,
    ):
        data = await resp.read()
        return resp.status, dict(resp.headers), json.loads(data) if data else None


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_guild("Strict", channels=("general", "other"))
        yield fake


def channel_of(fake: FakeDiscord, index: int = 0) -> FakeChannel:
    return list(fake.guild.channels.values())[index]


def too_long(errors: str, n: int) -> dict[str, Any]:
    return {errors: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {n} "
                                  "or fewer in length."}]}}  # fmt: skip


def button(custom_id: str, label: str = "ok") -> dict[str, Any]:
    return {"type": 2, "style": 1, "custom_id": custom_id, "label": label}


# ------------------------------------------------------------------------------ the spec


def test_spec_is_vendored_with_its_licence_and_commit() -> None:
    spec = load_spec()
    assert load_spec() is spec  # read and indexed once per process
    assert spec.document["openapi"].startswith("3.1")
    assert re.fullmatch(r"[0-9a-f]{40}", spec.commit)
    assert spec.source["repository"] == "https://github.com/discord/discord-api-spec"
    assert "MIT License" in (SPEC_DIR / "LICENSE").read_text()
    assert set(ALLOWANCES) == {"snowflake-int", "int-string"}


async def test_the_old_grant_range_fails_the_whole_sync(fake: FakeDiscord) -> None:
    """What real Discord did to the bot: ±INT64_MAX as an INTEGER option's min/max (Discord
    allows ±2^53) makes the bulk overwrite 400 Invalid Form Body, and no command registers."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0)

    @bot.tree.command(name="grant", description="Give coins")
    async def grant(
        itx: discord.Interaction, amount: app_commands.Range[int, -INT64_MAX, INT64_MAX]
    ) -> None:
        raise AssertionError("never synced, never called")

    @bot.tree.command(name="coins", description="Balance")
    async def coins(itx: discord.Interaction) -> None:
        raise AssertionError("never synced, never called")

    async with running_bot(fake, bot):
        with pytest.raises(discord.HTTPException) as refused:
            await bot.tree.sync()
    assert refused.value.status == 400 and refused.value.code == 50035
    (invalid,) = fake.take_invalid()
    assert invalid.method == "PUT" and invalid.path.endswith("/commands")
    assert fake.commands() == {}  # the good /coins is not registered either
    status, _, answer = await call(
        fake, "PUT", f"/applications/{fake.application_id}/commands",
        body=[{"name": "grant", "description": "Give coins", "options": [
            {"type": 4, "name": "amount", "description": "How many", "required": True,
             "min_value": -INT64_MAX, "max_value": INT64_MAX}]}],
    )  # fmt: skip
    assert status == 400
    assert answer == {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {"0": {"options": {"0": {
            "min_value": {"_errors": [{"code": "NUMBER_TYPE_MIN", "message":
                                       "int value should be greater than or equal to "
                                       "-9007199254740991."}]},
            "max_value": {"_errors": [{"code": "NUMBER_TYPE_MAX", "message":
                                       "int value should be less than or equal to "
                                       "9007199254740991."}]},
        }}}},
    }  # fmt: skip
    fake.take_invalid()


async def test_a_range_within_discords_limit_syncs(fake: FakeDiscord) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0)

    @bot.tree.command(name="grant", description="Give coins")
    async def grant(
        itx: discord.Interaction, amount: app_commands.Range[int, -(2**53 - 1), 2**53 - 1]
    ) -> None:
        raise AssertionError("not called")

    async with running_bot(fake, bot):
        await bot.tree.sync()
    assert fake.commands()["grant"]["options"][0]["max_value"] == 2**53 - 1


LIMIT_CASES = [
    ({"content": "x" * 2001}, too_long("content", 2000)),
    ({"embeds": [{"title": "t"}] * 11}, too_long("embeds", 10)),
    ({"embeds": [{"title": "t" * 257}]}, {"embeds": {"0": too_long("title", 256)}}),
    (
        {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]},
        {"embeds": {"_errors": [{"code": "MAX_EMBED_SIZE_EXCEEDED",
                                 "message": "Embed size exceeds maximum size of 6000"}]}},
    ),
    (
        {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
        {"embeds": {"0": {"fields": {"0": too_long("value", 1024)}}}},
    ),
    (
        {"embeds": [{"fields": [{"name": "", "value": "v"}]}]},
        {"embeds": {"0": {"fields": {"0": {"name": {"_errors": [
            {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}}}}},
    ),
    ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
     {"embeds": {"0": too_long("fields", 25)}}),
    (
        {"components": [{"type": 1, "components": [button("c" * 101)]}]},
        {"components": {"0": {"components": {"0": {"custom_id": {"_errors": [
            {"code": "BASE_TYPE_BAD_LENGTH",
             "message": "Must be between 1 and 100 in length."}]}}}}}},
    ),
    (
        {"components": [{"type": 1, "components": [button("a", "l" * 81)]}]},
        {"components": {"0": {"components": {"0": too_long("label", 80)}}}},
    ),
    (
        {"components": [{"type": 1, "components": [button(f"b{n}") for n in range(6)]}]},
        {"components": {"0": {"components": {"_errors": [
            {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 5 in length."}]}}}},
    ),
    (
        {"components": [{"type": 1, "components": [button(f"r{n}")]} for n in range(6)]},
        too_long("components", 5),
    ),
    (
        {"components": [{"type": 1, "components": [button("same"), button("same")]}]},
        {"components": {"_errors": [{"code": "COMPONENT_CUSTOM_ID_DUPLICATED",
                                     "message": "Component custom id cannot be duplicated"}]}},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "errors"), LIMIT_CASES)
async def test_message_limits_answer_like_discord(
    fake: FakeDiscord, payload: dict[str, Any], errors: dict[str, Any]
) -> None:
    channel = channel_of(fake)
    status, _, answer = await call(fake, "POST", f"/channels/{channel.id}/messages", body=payload)
    assert (status, answer) == (
        400,
        {"code": 50035, "message": "Invalid Form Body", "errors": errors},
    )
    assert fake.channel_messages(channel) == []  # nothing was posted
    (invalid,) = fake.take_invalid()
    assert invalid.status == 400 and invalid.payload == payload


async def test_interaction_callback_errors_nest_under_data(fake: FakeDiscord) -> None:
    status, _, answer = await call(
        fake, "POST", "/interactions/1/token/callback", body={"type": 4, "data": {"content": 5}}
    )
    assert status == 400
    assert answer["errors"] == {"data": {"content": {"_errors": [
        {"code": "BASE_TYPE_STRING", "message": 'Could not interpret "5" as string.'},
    ]}}}  # fmt: skip
    fake.take_invalid()


async def test_what_discord_py_sends_is_allowed_explicitly(fake: FakeDiscord) -> None:
    """Integer snowflakes, int-parseable strings for integer fields, string nonces."""
    channel = channel_of(fake)
    first = await call(fake, "POST", f"/channels/{channel.id}/messages", body={"content": "a"})
    assert first[0] == 200
    status, _, _ = await call(
        fake, "POST", f"/channels/{channel.id}/messages",
        body={"content": "b", "nonce": "6276361892971058613", "enforce_nonce": True,
              "allowed_mentions": {"parse": [], "users": [123, "456"]},
              "message_reference": {"message_id": int(first[2]["id"]),
                                    "channel_id": channel.id}},
    )  # fmt: skip
    assert status == 200
    status, _, _ = await call(
        fake, "PUT", f"/applications/{fake.application_id}/commands",
        body=[{"name": "mod", "description": "d", "default_member_permissions": "32"}],
    )  # fmt: skip
    assert status == 200
    status, _, answer = await call(
        fake, "PUT", f"/applications/{fake.application_id}/commands",
        body=[{"name": "mod", "description": "d", "default_member_permissions": "x32"}],
    )  # fmt: skip
    assert (
        status == 400
        and answer["errors"]["0"]["default_member_permissions"]["_errors"][0]["code"]
        == "NUMBER_TYPE_COERCE"
    )
    fake.take_invalid()


async def test_routes_methods_and_json_like_discord(fake: FakeDiscord) -> None:
    channel = channel_of(fake)
    assert (await call(fake, "GET", "/no/such/route"))[::2] == (
        404, {"code": 0, "message": "404: Not Found"},
    )  # fmt: skip
    assert (await call(fake, "PUT", f"/channels/{channel.id}/messages"))[::2] == (
        405, {"code": 0, "message": "405: Method Not Allowed"},
    )  # fmt: skip
    status, _, answer = await call(fake, "GET", "/channels/not-a-snowflake")
    assert status == 400 and answer["errors"] == {"channel_id": {"_errors": [
        {"code": "NUMBER_TYPE_COERCE",
         "message": 'Value "not-a-snowflake" is not snowflake.'},
    ]}}  # fmt: skip
    status, _, answer = await call(
        fake, "POST", f"/channels/{channel.id}/messages", raw=b'{"content": '
    )
    assert (status, answer) == (
        400, {"code": 50109, "message": "The request body contains invalid JSON."},
    )  # fmt: skip
    assert len(fake.take_invalid()) == 3  # the invalid JSON never reached the spec check
    assert fake.problems() == []


# ------------------------------------------------------------------------------ uploads


def upload_form(payload: dict[str, Any], data: bytes, name: str = "big.bin") -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    form.add_field("files[0]", data, filename=name, content_type="application/octet-stream")
    return form


async def test_an_upload_over_the_limit_is_413(fake: FakeDiscord) -> None:
    fake.attachment_size_limit = 1000
    channel = channel_of(fake)
    path = f"/channels/{channel.id}/messages"
    status, _, answer = await call(fake, "POST", path, form=upload_form({}, b"x" * 1001))
    assert (status, answer) == (413, {"code": 40005, "message": "Request entity too large"})
    assert fake.take_invalid()[0].status == 413
    status, _, _ = await call(fake, "POST", path, form=upload_form({}, b"x" * 1000))
    assert status == 200


async def test_uploads_are_kept_as_digests_unless_asked(fake: FakeDiscord) -> None:
    channel = channel_of(fake)
    data = b"\x89PNG\r\n\x1a\n" + b"p" * 5000
    path = f"/channels/{channel.id}/messages"
    await call(fake, "POST", path, form=upload_form({"content": "f"}, data, "a.png"))
    (kept_not,) = fake.channel_messages(channel)[0].attachments
    assert kept_not.size == len(data) and kept_not.sha256 == hashlib.sha256(data).hexdigest()
    assert kept_not.data == b"" and kept_not.content_type == "image/png"
    with pytest.raises(LookupError, match="keep_upload_bytes"):
        _ = fake.channel_messages(channel)[0].files
    fake.keep_upload_bytes = True
    await call(fake, "POST", path, form=upload_form({"content": "g"}, data, "b.png"))
    assert fake.channel_messages(channel)[1].files == {"b.png": data}


# ------------------------------------------------------------------------------ rate limits


async def test_route_buckets_count_down_then_429(fake: FakeDiscord) -> None:
    path = f"/channels/{channel_of(fake).id}/messages"
    seen = []
    for n in range(5):
        status, headers, _ = await call(fake, "POST", path, body={"content": str(n)})
        assert status == 200
        seen.append(headers)
    assert [h["X-RateLimit-Remaining"] for h in seen] == ["4", "3", "2", "1", "0"]
    assert {h["X-RateLimit-Limit"] for h in seen} == {"5"}
    assert len({h["X-RateLimit-Bucket"] for h in seen}) == 1
    assert 0 < float(seen[-1]["X-RateLimit-Reset-After"]) <= 5.0
    reset_at = time.time() + float(seen[-1]["X-RateLimit-Reset-After"])  # epoch seconds
    assert abs(float(seen[-1]["X-RateLimit-Reset"]) - reset_at) < 1
    status, headers, answer = await call(fake, "POST", path, body={"content": "too many"})
    assert status == 429 and answer["global"] is False and 0 < answer["retry_after"] <= 5.0
    assert answer["message"] == "You are being rate limited."
    assert headers["X-RateLimit-Scope"] == "user" and headers["Via"]
    assert int(headers["Retry-After"]) >= answer["retry_after"]
    # Another channel has its own bucket; time moving on refills this one.
    other = f"/channels/{channel_of(fake, 1).id}/messages"
    assert (await call(fake, "POST", other, body={"content": "x"}))[0] == 200
    fake.clock.advance(5)
    assert (await call(fake, "POST", path, body={"content": "again"}))[0] == 200
    assert len(fake.ratelimits.hits) == 1 and fake.problems() == []


async def test_the_global_limit_spares_interaction_routes(fake: FakeDiscord) -> None:
    fake.ratelimits.global_limit, fake.ratelimits.global_period = 2, 10.0
    channel = channel_of(fake)
    for _ in range(2):
        assert (await call(fake, "GET", f"/channels/{channel.id}"))[0] == 200
    status, headers, answer = await call(fake, "GET", f"/guilds/{fake.guild.id}")
    assert status == 429 and answer["global"] is True
    assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
    # Interaction webhooks are not bound by the global limit (an unknown token: 401).
    status, _, _ = await call(
        fake, "POST", f"/webhooks/{fake.application_id}/t", body={"content": "x"}
    )
    assert status == 401


# ------------------------------------------------------------------------------ deadlines


@pytest.fixture
async def quiet_bot(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    """A connected client that never answers interactions: the test answers by hand."""
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0)
    async with running_bot(fake, client):
        yield client


async def answer(fake: FakeDiscord, rec: InteractionRecord, content: str) -> tuple[int, Any]:
    status, _, body = await call(
        fake, "POST", f"/interactions/{rec.id}/{rec.token}/callback",
        body={"type": 4, "data": {"content": content}},
    )  # fmt: skip
    return status, body


async def test_first_response_after_3_seconds_is_unknown_interaction(
    fake: FakeDiscord, quiet_bot: discord.Client
) -> None:
    rec = await fake.slash("anything", user=fake.add_user("u", guilds=[fake.guild]))
    fake.clock.advance(ACK_DEADLINE + 0.1)
    unknown = {"code": 10062, "message": "Unknown interaction"}
    assert await answer(fake, rec, "late") == (404, unknown)
    assert rec.expired and not rec.responded and rec.ack_latency is not None
    old = await fake.slash("anything", user=rec.user, age=ACK_DEADLINE + 1)
    assert (await answer(fake, old, "late"))[0] == 404


async def test_webhooks_after_15_minutes_are_invalid_token(
    fake: FakeDiscord, quiet_bot: discord.Client
) -> None:
    rec = await fake.slash("anything", user=fake.add_user("u", guilds=[fake.guild]))
    assert (await answer(fake, rec, "in time"))[0] == 200
    webhook = f"/webhooks/{fake.application_id}/{rec.token}"
    fake.clock.advance(TOKEN_LIFETIME - 1)
    assert (await call(fake, "POST", webhook, body={"content": "still fine"}))[0] == 204
    fake.clock.advance(2)
    for method, path, body in (
        ("POST", webhook, {"content": "too late"}),
        ("PATCH", f"{webhook}/messages/@original", {"content": "too late"}),
    ):
        status, _, answer_ = await call(fake, method, path, body=body)
        assert (status, answer_) == (401, {"code": 50027, "message": "Invalid Webhook Token"})
    assert [m.content for m in rec.messages] == ["in time", "still fine"]


async def test_discord_py_waits_out_a_429_and_the_message_arrives(
    fake: FakeDiscord, quiet_bot: discord.Client
) -> None:
    channel = channel_of(fake)
    fake.ratelimits.exhaust(
        "POST", "/channels/{channel_id}/messages", {"channel_id": str(channel.id)}, 0.3
    )
    sent = await quiet_bot.get_partial_messageable(channel.id).send("after the wait")
    assert fake.messages[sent.id].content == "after the wait"
    assert [h.retry_after for h in fake.ratelimits.hits] == [0.3]


async def test_an_uploaded_file_digest_matches_what_discord_py_sent(
    fake: FakeDiscord, quiet_bot: discord.Client
) -> None:
    channel = quiet_bot.get_partial_messageable(channel_of(fake).id)
    data = b"some bytes" * 100
    sent = await channel.send(file=discord.File(io.BytesIO(data), "d.bin"))
    (stored,) = fake.messages[sent.id].attachments
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == len(data)


# ------------------------------------------------------------------------------ the suite


def test_a_test_that_leaves_an_invalid_request_fails(pytester: pytest.Pytester) -> None:
    """The per-test check in tests/conftest.py: a request Discord would refuse fails the
    test that made it, with the request and Discord's reasons in the report."""
    pytester.makeconftest("from tests.conftest import discord_strictness  # noqa: F401\n")
    pytester.makepyfile(
        """
        import aiohttp
        from tests.fakes.discord_server import FakeDiscord

        async def test_sends_a_too_long_message():
            async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
                channel = fake.add_guild().default_channel
                url = f"{fake.base_url}/api/v10/channels/{channel.id}/messages"
                async with http.post(url, json={"content": "x" * 2001}) as resp:
                    assert resp.status == 400

        async def test_takes_what_it_provokes():
            async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
                async with http.get(f"{fake.base_url}/api/v10/no/such/route"):
                    pass
                assert len(fake.take_invalid()) == 1
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 request(s) Discord would refuse*",
            "*invalid request: POST /api/v10/channels/*/messages -> 400 50035: "
            "content: BASE_TYPE_MAX_LENGTH Must be 2000 or fewer in length.*",
        ]
    )
