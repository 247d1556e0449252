"""Language follows the member: replies in the interaction's language, the user row kept
current, and command names, descriptions, options and choices localised in the synced commands."""

from __future__ import annotations

from bot.i18n import t
from tests.cogs.conftest import Harness


def test_synced_commands_carry_spanish_localisations(harness: Harness) -> None:
    commands = harness.fake.commands(harness.guild)
    generate = commands["generate"]
    for locale in ("es-ES", "es-419"):
        assert generate["name_localizations"][locale] == "generar"
        assert generate["description_localizations"][locale].startswith("Crea una imagen")
    assert "en-US" not in generate["name_localizations"]  # English is the command's own text
    prompt = next(o for o in generate["options"] if o["name"] == "prompt")
    assert prompt["name_localizations"]["es-ES"] == "indicación"
    assert prompt["description_localizations"]["es-419"].startswith("Qué crear")
    kind = next(o for o in commands["gallery"]["options"] if o["name"] == "kind")
    all_choice = next(c for c in kind["choices"] if c["value"] == "all")
    assert all_choice["name_localizations"]["es-ES"] == "todas"
    settings = commands["settings"]
    assert settings["name_localizations"]["es-ES"] == "ajustes"
    set_ = next(o for o in settings["options"] if o["name"] == "set")
    assert set_["name_localizations"]["es-419"] == "cambiar"
    setting = next(o for o in set_["options"] if o["name"] == "setting")
    cost = next(c for c in setting["choices"] if c["value"] == "generation_cost")
    assert cost["name"] == "Cost per generated image"
    assert cost["name_localizations"]["es-ES"] == "Coste por imagen generada"
    # The catalogue's English names are the registered names.
    for name, command in commands.items():
        assert t("en", f"cmd.{name}.name") == name
        assert command["description"] == t("en", f"cmd.{name}.description")


async def test_a_spanish_member_gets_spanish_replies_and_their_language_is_kept(
    harness: Harness,
) -> None:
    fake = harness.fake
    rec = await fake.slash("coins", {}, user=harness.alice, locale="es-419")
    assert "Saldo" in (await rec.wait_original()).embed_text()
    user = await harness.app.accounts.find(harness.alice.id)
    assert user is not None and user.language == "es"
    rec = await fake.slash("generate", {"prompt": " "}, user=harness.alice, locale="es-ES")
    assert "Tu descripción está vacía" in (await rec.wait_original()).content
    rec = await fake.slash("grant", {"user": harness.bob, "amount": 5}, user=harness.alice,
                           locale="es-ES")  # fmt: skip
    assert "Solo los moderadores de este servidor" in (await rec.wait_original()).content
    # The same member in an English client: English, and the row follows.
    rec = await fake.slash("coins", {}, user=harness.alice, locale="en-GB")
    assert "Balance" in (await rec.wait_original()).embed_text()
    user = await harness.app.accounts.find(harness.alice.id)
    assert user is not None and user.language == "en"


async def test_spanish_grant_notice(harness: Harness) -> None:
    await (
        await harness.fake.slash("coins", {}, user=harness.alice, locale="es-ES")
    ).wait_original()
    rec = await harness.fake.slash("grant", {"user": harness.alice, "amount": 9, "reason": "bien"},
                                   user=harness.mod)  # fmt: skip
    await rec.wait_original()
    notice = await harness.fake.wait_for_message(
        lambda m: "9 monedas" in m.content, channel=harness.fake.dm_channel(harness.alice)
    )
    assert "Recibiste" in notice.content and "bien" in notice.content
