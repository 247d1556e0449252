"""How cogs show images and money: the embed colour, an image's prompt and model as members
read them, its link in the web gallery, "100 coins"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import discord

from bot.i18n import t
from bot.services.types import Image
from cogs.common import shorten

if TYPE_CHECKING:
    from bot.app import NanoBananaBot

BANANA = discord.Colour(0xFFE135)


def coins(language: str, amount: int) -> str:
    """ "100 coins", "1 moneda"."""
    return t(language, "gen.coins", coins=amount)


def prompt_text(language: str, image: Image, limit: int = 4000) -> str:
    """An image's prompt as members read it; an edit's shows what it was made from: the
    original prompt, the earlier edits, then its own instruction."""
    earlier = [str(p) for p in image.metadata.get("source_prompts") or () if p]
    own = image.prompt or ""
    if not earlier:
        return shorten(own, limit)
    lines = [t(language, "gen.original_prompt", prompt=shorten(earlier[0], 1000))]
    lines += [t(language, "gen.edit_step", instruction=shorten(p, 1000)) for p in earlier[1:]]
    lines.append(t(language, "gen.edit_step", instruction=shorten(own, 1500)))
    return shorten("\n".join(lines), limit)


#: Discord's limit on an embed's description (RichEmbed.description maxLength 4096 in
#: discord/discord-api-spec openapi.json, commit 74fda0f, 2026-07-18).
EMBED_DESCRIPTION_LIMIT = 4096
#: The most of the model's own words an embed shows (the prompt keeps the rest of the room).
SAID_LIMIT = 1500


def result_text(language: str, image: Image) -> str:
    """An image's prompt (see `prompt_text`) and what the model said beside it, within an
    embed's description."""
    said = str(image.metadata.get("text") or "").strip()
    if not said:
        return prompt_text(language, image)
    quoted = t(language, "gen.model_said", text=shorten(said, SAID_LIMIT))
    room = EMBED_DESCRIPTION_LIMIT - len(quoted) - 2
    return f"{prompt_text(language, image, limit=min(4000, room))}\n\n{quoted}"


#: The most an image's sources take of its message (Discord counts 6000 characters across a
#: message's embeds; the result's own embed keeps the rest).
SOURCES_LIMIT = 1200


def sources_embed(language: str, image: Image) -> discord.Embed | None:
    """The web pages a grounded image drew on, and the searches it ran (as Google Search
    links), listed under it; None when it was not grounded."""
    sources = [s for s in image.metadata.get("sources") or () if isinstance(s, dict)]
    queries = [q for q in image.metadata.get("search_queries") or () if isinstance(q, str) and q]
    if not sources and not queries:
        return None
    lines: list[str] = []
    for number, source in enumerate(sources, start=1):
        title = shorten(str(source.get("title") or "?"), 80).replace("[", "(").replace("]", ")")
        lines.append(f"{number}. [{title}]({source.get('uri')})")
    if queries:
        searched = " · ".join(
            f"[{shorten(q, 60).replace('[', '(').replace(']', ')')}]"
            f"(https://www.google.com/search?q={quote_plus(q)})"
            for q in queries[:5]
        )
        lines.append(t(language, "gen.searched", queries=searched))
    text = ""
    for line in lines:
        if len(text) + len(line) + 1 > SOURCES_LIMIT:
            break
        text = f"{text}\n{line}" if text else line
    return discord.Embed(title=t(language, "gen.sources"), description=text, colour=BANANA)


def model_name(bot: NanoBananaBot, image: Image) -> str:
    """The model's name as members know it ("Nano Banana Pro", or the owner's own name for
    it), not its API id."""
    model = image.metadata.get("model")
    return bot.generation.catalog.name_of(model if isinstance(model, str) else None)


def image_link(bot: NanoBananaBot, image: Image) -> str | None:
    """The image's page in the web gallery, if members can reach one."""
    where = f"/servers/{image.guild_id}" if image.guild_id is not None else "/all"
    return bot.web_link(f"{where}/images/{image.id}")


def web_button(language: str, url: str) -> discord.ui.Button[Any]:
    """ "Open in web gallery": a link button (Discord opens the URL; no custom_id)."""
    return discord.ui.Button(
        label=t(language, "gen.web_gallery"), style=discord.ButtonStyle.link, url=url, emoji="🖼️"
    )
