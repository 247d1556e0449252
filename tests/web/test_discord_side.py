"""The Discord side of the web: "Open in web gallery" link buttons, and `/token`."""

from __future__ import annotations

from pathlib import Path

from tests.cogs.conftest import Harness, png
from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web

BASE = "https://gallery.example.test"


async def start_public(web: Web) -> Harness:
    h = web.h
    await h.stop_bot()
    await h.start_bot(web=True, web_base_url=BASE)
    return h


def links(message: object) -> list[dict[str, object]]:
    return [b for b in message.buttons() if b.get("style") == 5]  # type: ignore[attr-defined]


async def test_results_uploads_and_gallery_link_to_the_web_gallery(web: Web) -> None:
    h = await start_public(web)
    rec = await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice)
    message = await rec.wait_original(lambda m: bool(m.filenames), timeout=10)
    await h.settle()  # shown first, stored meanwhile
    (button,) = links(message)
    image = (await h.app.image_repo.list_by_user(await h.user_id(h.alice))).items[0]
    assert button["url"] == f"{BASE}/servers/{h.guild.id}/images/{image.id}"
    assert button["label"] == "Open in web gallery" and "custom_id" not in button
    assert [b["label"] for b in message.buttons()][:4] == ["Reroll", "Edit", "Variations", "Delete"]
    rec = await h.fake.slash("upload", {"image": h.fake.upload(png(), "a.png")}, user=h.alice)
    (uploaded,) = links(await rec.wait_original())
    assert str(uploaded["url"]).startswith(f"{BASE}/servers/{h.guild.id}/images/")
    rec = await h.fake.slash("gallery", {}, user=h.alice)
    (gallery,) = links(await rec.wait_original())
    assert gallery["url"] == f"{BASE}/servers/{h.guild.id}"
    # Someone else's gallery: the web gallery only shows you your own, so no link.
    rec = await h.fake.slash("gallery", {"user": h.alice}, user=h.bob)
    assert links(await rec.wait_original()) == []


async def test_no_links_without_a_public_address(web: Web) -> None:
    h = web.h  # the web server runs, but WEB_BASE_URL is unset
    rec = await h.fake.slash("upload", {"image": h.fake.upload(png(), "a.png")}, user=h.alice)
    assert links(await rec.wait_original()) == []


async def test_token_create_list_use_revoke(web: Web, tmp_path: Path) -> None:
    h = web.h
    rec = await h.fake.slash("token create", {"name": "my-script"}, user=h.alice)
    message = await rec.wait_original()
    assert message.ephemeral and "shown only this once" in message.content
    secret = next(w for w in message.content.split() if w.startswith("nbt_"))
    # Regression: without WEB_BASE_URL it showed members a curl line to the host's loopback
    # address; now it says the owner hasn't given the API a public address.
    assert web.url not in message.content and "curl" not in message.content
    assert "127.0.0.1" not in message.content and "WEB_BASE_URL" in message.content
    # Only a hash is stored.
    if h.app.db.dialect.is_postgres:
        rows = await h.app.db.fetchall("SELECT * FROM api_tokens")
        raw = repr([dict(r) for r in rows]).encode()
    else:
        raw = (tmp_path / "bot.db").read_bytes()
    assert secret.encode() not in raw and secret[4:].encode() not in raw
    await web.call("GET", "/api/v1/me", secret, expect=200)
    rec = await h.fake.slash("token list", {}, user=h.alice)
    listing = (await rec.wait_original()).embed_text()
    assert "my-script" in listing and "never" not in listing  # its last use is shown
    rec = await h.fake.slash("token list", {}, user=h.bob)
    assert "no API tokens" in (await rec.wait_original()).embed_text()
    rec = await h.fake.slash("token revoke", {"id": "my-script"}, user=h.alice)
    assert "no longer works" in (await rec.wait_original()).content
    status, body, _ = await web.call("GET", "/api/v1/me", secret)
    assert status == 401 and body["error"]["code"] == "api_token_revoked"
    await assert_ledger_consistent(h.app.db)


async def test_token_create_shows_how_to_use_it_at_the_public_address(web: Web) -> None:
    h = await start_public(web)
    rec = await h.fake.slash("token create", {"name": "my-script"}, user=h.alice)
    content = (await rec.wait_original()).content
    secret = next(w for w in content.split() if w.startswith("nbt_"))
    assert f"curl -H 'Authorization: Bearer {secret}' {BASE}/api/v1/me" in content


async def test_token_refusals(web: Web) -> None:
    h = web.h
    for n in range(5):
        rec = await h.fake.slash("token create", {"name": f"t{n}"}, user=h.bob)
        await rec.wait_original()
    rec = await h.fake.slash("token create", {}, user=h.bob)
    assert "most active tokens allowed in this server (5)" in (await rec.wait_original()).content
    rec = await h.fake.slash("token revoke", {"id": "nope"}, user=h.bob)
    assert "no active token nope" in (await rec.wait_original()).content
    rec = await h.fake.slash("token create", {"name": "x" * 41}, user=h.bob)
    assert "at most 40 characters" in (await rec.wait_original()).content
    assert await h.rows("api_tokens") == 5
    # Global commands (no DISCORD_GUILD_IDS) are the ones a DM could reach.
    await h.stop_bot()
    await h.start_bot(web=True, discord_guild_ids=[])
    rec = await h.fake.slash("token create", {}, user=h.alice, dm=True)
    assert "only works in a server" in (await rec.wait_original()).content
    assert await h.rows("api_tokens") == 5
