"""`/privacy export` and `/privacy erase` end to end through the fake Discord: a member with
images in two servers, an API token, a web session, a grant and a job in progress, in both
economy scopes. After the erasure no table holds anything of theirs (every table and column is
read) but the ledger rows, kept under an anonymous id with every wallet's invariant holding;
their objects are gone and the messages that showed their images are deleted; moderators see it
in the audit of both servers; another member's data is untouched."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image as PILImage

from bot.services.permissions import Identity
from bot.services.privacy import RETENTION_LOCK
from storage.db import Database
from storage.timeutil import to_iso, utcnow
from tests.cogs.conftest import Harness, make_harness, outcome, png
from tests.fakes.discord_models import FakeMessage, InteractionRecord
from tests.storage.helpers import assert_ledger_consistent

SECRET = "zebracorn"  # in every prompt and title of the member: found nowhere after erasure


async def answer(rec: InteractionRecord, timeout: float = 15) -> FakeMessage:
    """The private answer with content, attachments or buttons (after a deferral too)."""

    def shown(r: InteractionRecord) -> FakeMessage | None:
        for m in reversed(r.messages):
            if not m.deleted and (m.content or m.embeds or m.attachments or m.buttons()):
                return m
        return None

    await rec.wait_for(lambda r: shown(r) is not None, timeout)
    found = shown(rec)
    assert found is not None
    return found


async def every_value(db: Database) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value of every table."""
    sql = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        if db.dialect.is_postgres
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    tables = [r[0] for r in await db.fetchall(sql)]
    found = []
    for table in tables:
        for row in await db.fetchall(f"SELECT * FROM {table}"):
            for column in row.keys():  # noqa: SIM118 (sqlite3.Row iterates values)
                if row[column] is not None:
                    found.append((str(table), str(column), str(row[column])))
    return found


async def make_member_data(h: Harness) -> dict[str, Any]:
    """owner2 (a member of both servers) makes images in each, uploads one, makes an API token
    and signs in to the web gallery; a moderator grants them coins (guild scope). Bob makes
    an image too (it must survive)."""
    m = h.owner2
    h.fake.keep_upload_bytes = True  # the tests read the archives back
    first = await outcome(await h.fake.slash("generate", {"prompt": f"a {SECRET} one"}, user=m))
    second = await outcome(
        await h.fake.slash("generate", {"prompt": f"a {SECRET} two"}, user=m, guild=h.other)
    )
    up = await h.fake.slash(
        "upload", {"image": h.fake.upload(png(), "mine.png"), "title": f"{SECRET} upload"},
        user=m, guild=h.other,
    )  # fmt: skip
    await answer(up)
    await answer(await h.fake.slash("token create", {"name": f"{SECRET}-token"}, user=m,
                                     guild=h.other))  # fmt: skip
    # A character of their own (its images erased with it) and their preferences; in guild
    # scope, a payment to Bob whose reason is their words (erased; Bob's coins and rows stay).
    saved = await answer(await h.fake.slash(
        "character save", {"name": f"{SECRET} cat", "image": h.fake.upload(png(), "cat.png")},
        user=m,
    ))  # fmt: skip
    assert "Saved" in saved.content
    await answer(
        await h.fake.slash("settings me", {"private": False, "leaderboard": False}, user=m)
    )
    await outcome(await h.fake.slash("generate", {"prompt": "bob's banana"}, user=h.bob))
    if h.settings.economy_scope.value == "guild":
        await answer(await h.fake.slash("grant", {"user": m, "amount": 50}, user=h.mod))
        paid = await answer(await h.fake.slash(
            "pay", {"member": h.bob, "amount": 1, "reason": f"{SECRET} thanks"}, user=m
        ))  # fmt: skip
        assert "You paid" in paid.content, paid.content
    await h.settle()
    now = utcnow()
    await h.app.db.execute(
        "INSERT INTO web_sessions (id, discord_id, name, server_ids, csrf, created_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("session-1", str(m.id), f"{SECRET} name", "[]", "csrf", to_iso(now),
         to_iso(now + timedelta(days=1))),
    )  # fmt: skip
    return {"results": [first, second]}


async def followup(rec: InteractionRecord, timeout: float = 15) -> FakeMessage:
    """A button press's own private answer: its first response (a refusal before any await),
    or a followup after a deferral (whose original is the message pressed)."""

    def found(r: InteractionRecord) -> FakeMessage | None:
        if r.callback_type == 4 and r.original is not None:
            return r.original
        return next((m for m in r.followups if m.content), None)

    await rec.wait_for(lambda r: found(r) is not None, timeout)
    message = found(rec)
    assert message is not None
    return message


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def check_archive(h: Harness, files: dict[str, bytes], *, with_images: bool = True) -> None:
    for server, words in ((h.guild.id, [f"a {SECRET} one"]),
                          (h.other.id, [f"a {SECRET} two", f"{SECRET} upload"])):  # fmt: skip
        images = json.loads(files[f"servers/{server}/images.json"])
        texts = [i.get("prompt") or i.get("title") for i in images]
        assert sorted(texts) == sorted(words)
        for image in images:
            if with_images:
                with PILImage.open(io.BytesIO(files[f"servers/{server}/{image['file']}"])) as pic:
                    pic.verify()
            else:
                assert "file" not in image
    ledgers = [json.loads(v) for k, v in files.items() if k.startswith("ledger/")]
    scope = h.settings.economy_scope.value
    assert len(ledgers) == (2 if scope == "guild" else 1)
    for ledger in ledgers:
        rows = ledger["transactions"]
        assert sum(r["delta"] for r in rows) == ledger["wallet"]["coins"]
    assert json.loads(files["profile.json"])["discord_id"] == str(h.owner2.id)
    tokens = json.loads(files["api_tokens.json"])
    assert [t["name"] for t in tokens] == [f"{SECRET}-token"] and "token_hash" not in tokens[0]
    assert b"README.txt" not in files["README.txt"] and files["README.txt"].startswith(b"Your data")
    (character,) = json.loads(files["characters.json"])
    assert character["name"] == f"{SECRET} cat"
    if with_images:
        (picture,) = character["files"]
        with PILImage.open(io.BytesIO(files[f"servers/{h.guild.id}/{picture}"])) as pic:
            pic.verify()
    assert json.loads(files["preferences.json"])["leaderboard_hidden"] == 1


@pytest.mark.parametrize("scope", ["guild", "global"])
async def test_export_and_erase_in_two_servers(tmp_path: Path, scope: str) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, economy_scope=scope)
        m = h.owner2
        made = await make_member_data(h)
        db = h.app.db
        user_id = await h.user_id(m)
        bob_id = await h.user_id(h.bob)
        bob_before = await db.fetchall(
            "SELECT id, storage_key, thumbnail_key FROM images WHERE user_id = ?", (bob_id,)
        )
        keys = [str(r[0]) for r in await db.fetchall(
            "SELECT storage_key FROM images WHERE user_id = ?", (user_id,))]  # fmt: skip
        assert len(keys) == 3
        character_keys = [k for k in await h.objects() if k.startswith("characters/")]
        assert len(character_keys) == 1

        # A job in progress: held at the API.
        h.api.gate = gate = asyncio.Event()
        calls = len(h.api.requests)
        pending = await h.fake.slash("generate", {"prompt": f"a {SECRET} three"}, user=m)
        await h.api.received(calls + 1)

        # Export: privately, the archive as an attachment (no web address here).
        message = await answer(await h.fake.slash("privacy export", user=m, guild=h.other))
        assert message.ephemeral and message.filenames == ["nanobanana-my-data.zip"]
        files = unzip(message.files["nanobanana-my-data.zip"])
        check_archive(h, files)
        jobs = json.loads(files["jobs.json"])
        assert any(j["status"] in ("PENDING", "PROCESSING") for j in jobs)

        # Erase: asked first; refused (nothing erased) while the job runs.
        ask = await answer(await h.fake.slash("privacy erase", user=m))
        assert ask.ephemeral and "can't be undone" in ask.content
        refused = await followup(await h.fake.click(ask, label="Erase everything", user=m))
        assert "still being made" in refused.content
        assert await db.fetchval("SELECT COUNT(*) FROM images WHERE user_id = ?", (user_id,)) == 3
        gate.set()
        await outcome(pending)
        await h.settle()

        ledger_before = await db.fetchall(
            "SELECT id, wallet_id, delta, balance_after, kind FROM coin_transactions "
            "WHERE user_id = ? ORDER BY seq",
            (user_id,),
        )
        ask = await answer(await h.fake.slash("privacy erase", user=m, guild=h.other))
        done = await h.fake.click(ask, label="Erase everything", user=m)
        await done.wait_for(lambda r: any("Done" in x.content for x in r.messages + r.edits), 15)

        # Nothing of theirs anywhere: no id, no Discord id, no prompt or title.
        leftovers = [
            (table, column) for table, column, value in await every_value(db)
            if user_id in value or str(m.id) in value or SECRET in value
        ]  # fmt: skip
        assert leftovers == []
        # The ledger rows stay, under one anonymous id, with every invariant.
        ledger_after = await db.fetchall(
            "SELECT id, wallet_id, delta, balance_after, kind, user_id FROM coin_transactions "
            "WHERE id IN (" + ", ".join("?" * len(ledger_before)) + ") ORDER BY seq",
            [r[0] for r in ledger_before],
        )
        assert [tuple(r[i] for i in range(5)) for r in ledger_after] == [
            tuple(r[i] for i in range(5)) for r in ledger_before
        ]
        anonymous = {r[5] for r in ledger_after}
        assert len(anonymous) == 1
        anon = await db.fetchone(
            "SELECT discord_id, display_name FROM users WHERE id = ?", (anonymous.pop(),)
        )
        assert anon is not None and (anon[0], anon[1]) == (None, None)
        await assert_ledger_consistent(db)
        # Their objects are gone; Bob's image, row and objects are untouched.
        objects = await h.objects()
        assert not any(key in objects for key in keys + character_keys)
        assert await db.fetchval("SELECT COUNT(*) FROM characters") == 0
        assert (
            await db.fetchall(
                "SELECT id, storage_key, thumbnail_key FROM images WHERE user_id = ?", (bob_id,)
            )
            == bob_before
        )
        for row in bob_before:
            assert row[1] in objects and row[2] in objects
        # The public results that showed their images are deleted.
        assert all(h.fake.messages[r.id].deleted for r in made["results"])
        # Moderators see it in each server's audit.
        erased_in = {int(r[0]) for r in await db.fetchall(
            "SELECT guild_id FROM moderation_actions WHERE action = 'privacy_erase'")}  # fmt: skip
        assert erased_in == {h.guild.id, h.other.id}
        audit = await answer(await h.fake.slash("settings audit", user=h.mod))
        assert "> A member erased their data" in audit.embeds[0]["description"]

        # They may start afresh; nothing they had comes back.
        again = await answer(await h.fake.slash("privacy export", user=m))
        assert "never used it" in again.content


async def test_export_link_and_data_only_fallback(tmp_path: Path) -> None:
    """Over the attachment limit, without a web address: the data without the files. With
    WEB_BASE_URL: a signed link, which serves the archive and expires with an erasure."""
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path)
        await make_member_data(h)
        # Between the archive's size with the images and without them.
        who = Identity(h.owner2.id, h.owner2.username)
        sizes = []
        for with_files in (True, False):
            archive = await h.app.privacy.export(who, with_files=with_files)
            sizes.append(archive.size)
            archive.discard()
        assert sizes[1] < sizes[0]
        h.fake.attachment_size_limit = (sizes[0] + sizes[1]) // 2
        message = await answer(await h.fake.slash("privacy export", user=h.owner2))
        assert "files are not included" in message.content
        files = unzip(message.files["nanobanana-my-data.zip"])
        check_archive(h, files, with_images=False)

        await h.stop_bot()
        h.fake.attachment_size_limit = 10 * 1024 * 1024
        await h.start_bot(web=True)
        assert h.app.web is not None
        h.app.settings = h.app.settings.model_copy(update={"web_base_url": h.app.web.url})
        message = await answer(await h.fake.slash("privacy export", user=h.owner2))
        assert not message.attachments and "minutes" in message.content
        link = next(w for w in message.content.split() if w.startswith("http"))
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/zip"
                check_archive(h, unzip(await response.read()))
            async with http.get(link[:-3] + "abc") as forged:
                assert forged.status == 410
            ask = await answer(await h.fake.slash("privacy erase", user=h.owner2))
            done = await h.fake.click(ask, label="Erase everything", user=h.owner2)
            await done.wait_for(lambda r: any("Done" in x.content for x in r.messages + r.edits))
            async with http.get(link) as gone:
                assert gone.status == 410


async def test_only_the_member_can_confirm_and_cancel_keeps_everything(harness: Harness) -> None:
    h = harness
    await outcome(await h.fake.slash("generate", {"prompt": "keep me"}, user=h.alice))
    await h.settle()
    # In a DM too (a member's data spans every server): global commands reach DMs.
    await h.stop_bot()
    await h.start_bot(discord_guild_ids=[])
    h.fake.keep_upload_bytes = True
    exported = await answer(await h.fake.slash("privacy export", user=h.alice, dm=True))
    files = unzip(exported.files["nanobanana-my-data.zip"])
    images = json.loads(files[f"servers/{h.guild.id}/images.json"])
    assert [i["prompt"] for i in images] == ["keep me"]
    ask = await answer(await h.fake.slash("privacy erase", user=h.alice))
    other = await followup(await h.fake.click(ask, label="Erase everything", user=h.bob))
    assert other.ephemeral and "Done" not in other.content
    kept = await h.fake.click(ask, label="Keep my data", user=h.alice)
    await kept.wait_for(lambda r: any("Nothing was erased" in x.content for x in r.edits))
    assert await h.rows("images") == 1
    never = await answer(await h.fake.slash("privacy erase", user=h.robot))
    assert never.buttons()
    nothing = await followup(await h.fake.click(never, label="Erase everything", user=h.robot))
    assert "never used it" in nothing.content


async def test_retention_sweep_deletes_old_images_and_their_objects(tmp_path: Path) -> None:
    """IMAGE_RETENTION_DAYS=30 for every server but one whose moderator set 0 (keep) with
    /settings; a second sweep finds nothing more."""
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, image_retention_days=30)
        rec = await h.fake.slash(
            "settings set", {"setting": "image_retention_days", "value": "off"},
            user=h.owner2, guild=h.other,
        )  # fmt: skip
        assert "until deleted" in (await rec.wait_original()).content
        show = await h.fake.slash("settings show", {}, user=h.mod)
        assert "30 days" in (await show.wait_original()).embed_text()
        await outcome(await h.fake.slash("generate", {"prompt": "old"}, user=h.alice))
        await outcome(await h.fake.slash("generate", {"prompt": "kept"}, user=h.owner2,
                                         guild=h.other))  # fmt: skip
        await outcome(await h.fake.slash("generate", {"prompt": "new"}, user=h.bob))
        await h.settle()
        db = h.app.db
        old = await db.fetchone(
            "SELECT id, storage_key, thumbnail_key FROM images WHERE prompt = 'old'"
        )
        assert old is not None
        await db.execute(
            "UPDATE images SET created_at = ? WHERE prompt IN ('old', 'kept')",
            (to_iso(utcnow() - timedelta(days=31)),),
        )
        assert await h.app.privacy.sweep_retention() == 1
        rows = await db.fetchall("SELECT prompt FROM images ORDER BY prompt")
        assert [r[0] for r in rows] == ["kept", "new"]
        objects = await h.objects()
        assert old[1] not in objects and old[2] not in objects and len(objects) == 4
        assert await h.app.privacy.sweep_retention() == 0
        await assert_ledger_consistent(db)
        # The hourly sweep runs in one process at a time: not while another live one holds it.
        sweep = h.app.retention
        assert sweep is not None and await sweep.run_once() == 0
        await db.execute(
            "INSERT INTO bot_processes (id, name, started_at, lease_until) VALUES "
            "('other', 'other', ?, ?)",
            (to_iso(utcnow()), to_iso(utcnow() + timedelta(hours=1))),
        )
        assert await h.app.leases.acquire(RETENTION_LOCK, "other")
        assert await sweep.run_once() is None
