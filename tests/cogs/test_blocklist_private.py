"""A blocked prompt is never shown to the channel: the blocklist is checked (from memory, after
the server's first use) before the first answer, and the refusal is private from the start, on
/generate, Reroll and Edit, in the server whose list it is and not in another."""

from __future__ import annotations

from collections.abc import Mapping

from tests.cogs.conftest import Harness, outcome
from tests.fakes.discord_server import FakeMessage, InteractionRecord

REFUSED = "uses words this server doesn't allow"


async def settings(harness: Harness, sub: str, options: Mapping[str, object]) -> None:
    rec = await harness.fake.slash(f"settings {sub}", options, user=harness.mod)
    assert (await rec.wait_original()).ephemeral


async def private_refusal(rec: InteractionRecord) -> FakeMessage:
    """The refusal is the interaction's first answer, private, and nothing public ever showed
    the prompt (no public message, edited or deleted since)."""
    message = await rec.wait_original(timeout=10)
    assert message.ephemeral, message.content
    assert REFUSED in message.content, message.content
    assert rec.followups == [] and rec.deleted == []
    assert all(snapshot.ephemeral for snapshot in rec.edits)
    return message


async def test_a_blocked_prompt_is_refused_privately_before_any_public_answer(
    harness: Harness,
) -> None:
    h = harness
    made = await outcome(await h.fake.slash("generate", {"prompt": "a banana split"},
                                            user=h.alice))  # fmt: skip
    await h.settle()
    await settings(h, "blocklist add", {"entry": "banana"})
    before = await h.counts()
    requests = len(h.api.requests)
    # /generate: the first answer is already the private refusal.
    await private_refusal(await h.fake.slash("generate", {"prompt": "a BANANA split"}, user=h.bob))
    # Reroll of an image made before the word was listed: refused the same way.
    await private_refusal(await h.fake.click(made, label="Reroll", user=h.alice))
    # Edit: the instruction is checked before the job's message appears.
    edit = await h.fake.click(made, label="Edit", user=h.alice)
    modal = await edit.wait_modal()
    submitted = await h.fake.submit_modal(modal, {"instruction": "more ʙᴀɴᴀɴᴀ"}, user=h.alice)
    await private_refusal(submitted)
    assert await h.counts() == before
    assert len(h.api.requests) == requests


async def test_the_list_is_per_server_and_a_removal_applies_at_once(harness: Harness) -> None:
    h = harness
    await settings(h, "blocklist add", {"entry": "banana"})
    await private_refusal(await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice))
    # Other Club has no blocklist: owner2 generates there.
    other = await outcome(
        await h.fake.slash("generate", {"prompt": "a banana"}, user=h.owner2, guild=h.other)
    )
    assert any(n.startswith("nanobanana-") for n in other.filenames)
    await h.settle()
    await settings(h, "blocklist remove", {"entry": "banana"})
    made = await outcome(await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice))
    assert any(n.startswith("nanobanana-") for n in made.filenames)
    await h.settle()
