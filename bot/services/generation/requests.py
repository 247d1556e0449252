"""What a new image job asks for: prompts as they will be sent, and the requests of a Reroll
or an Edit made from an earlier image (its prompt, model, ratio, size, inputs and turn)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from bot.nanobanana import InputImage, nearest_ratio
from bot.services import turns
from bot.services.catalog import ModelCatalog
from bot.services.errors import ImageNotFound, InvalidInput
from bot.services.generation.values import GenerationRequest
from storage.models import Image
from storage.objects import ObjectStore, StorageError

# Characters that show nothing on their own: a prompt made only of these (zero-width spaces,
# BOMs, word joiners, NULs, control and format characters, fillers) is empty.
_VISIBLE_CATEGORIES = frozenset("LNPS")
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Earlier prompts an edit keeps (the original and the latest ones).
MAX_SOURCE_PROMPTS = 5


def clean_prompt(prompt: str, max_chars: int) -> str:
    """The prompt as it will be sent: control characters dropped, stripped, with at least one
    visible character (a letter, digit, punctuation mark or symbol), within `max_chars`.
    Invisible-only prompts are empty, so they cost nothing."""
    cleaned = "".join(
        ch for ch in (prompt or "") if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    ).strip()
    if not any(
        unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES and ch not in _BLANK_GLYPHS
        for ch in cleaned
    ):
        raise InvalidInput("prompt.empty")
    if len(cleaned) > max_chars:
        raise InvalidInput("prompt.too_long", length=len(cleaned), limit=max_chars)
    return cleaned


def source_prompts(image: Image, *, own: bool) -> tuple[str, ...]:
    """The prompts an image was made from, oldest first: its own earlier ones (an edit's), and
    with `own` its own prompt (or an upload's title) too: what an edit of it shows."""
    earlier = [str(p) for p in image.metadata.get("source_prompts") or () if p]
    mine = image.prompt or image.title
    prompts = [*earlier, mine] if own and mine else earlier
    # The original and the latest few: a long chain of edits stays a short list.
    if len(prompts) > MAX_SOURCE_PROMPTS:
        prompts = [prompts[0], *prompts[-(MAX_SOURCE_PROMPTS - 1) :]]
    return tuple(prompts)


class RequestBuilder:
    """Requests made from stored images (Reroll, Edit), read back from the object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def reroll(
        self,
        image: Image,
        catalog: ModelCatalog,
        primary: Image | None = None,
        context: dict[str, Any] | None = None,
    ) -> GenerationRequest:
        """The same job again: prompt, model, ratio, size, inputs and earlier turn. A further
        image of an answer rerolls its job (`primary`)."""
        image = primary or image
        if not image.prompt or not image.is_generated:
            raise ImageNotFound()
        profile = catalog.profile(model_of(image, catalog))
        return GenerationRequest(
            prompt=image.prompt,
            aspect_ratio=ratio_for(image, profile.aspect_ratios),
            inputs=await self.inputs_of(image),
            source_image_ids=tuple(image.metadata.get("source_image_ids", [])),
            context=dict(context or {}),
            model=profile.model,
            image_size=size_for(image, profile.image_sizes),
            history=await turns.history_of(self.store, image) if profile.thinking else (),
            source_prompts=source_prompts(image, own=False),
            grounded=bool(image.metadata.get("grounded")) and profile.grounding,
            # A variation's reroll is another variation of the same image (its inputs).
            variation=bool(image.metadata.get("variation")),
        )

    async def variation(
        self,
        image: Image,
        catalog: ModelCatalog,
        primary: Image | None = None,
        context: dict[str, Any] | None = None,
    ) -> GenerationRequest:
        """A variation of `image`: the prompt, model, ratio, size and reference images of the
        job that made it (`primary` for a further image of an answer), with the image itself
        as the last reference; the model is asked for another take on it."""
        origin = primary or image
        if not origin.prompt or not origin.is_generated or not image.is_ready:
            raise ImageNotFound()
        profile = catalog.profile(model_of(origin, catalog))
        references = await self.inputs_of(origin)
        if origin.metadata.get("variation") and references:
            # A variation of a variation: the image it varied gives way to this one.
            references = references[:-1]
        return GenerationRequest(
            prompt=origin.prompt,
            aspect_ratio=ratio_for(image, profile.aspect_ratios),
            inputs=(*references, await self.image_as_input(image)),
            source_image_ids=(image.id,),
            context=dict(context or {}),
            model=profile.model,
            image_size=size_for(image, profile.image_sizes),
            variation=True,
        )

    async def edit(
        self,
        image: Image,
        prompt: str,
        catalog: ModelCatalog,
        context: dict[str, Any] | None = None,
    ) -> GenerationRequest:
        """A new job that edits `image` with `prompt` (already checked). On a thinking model
        the image's own turn (its prompt, the model's image and thought signatures) is sent
        as context; otherwise the image goes as an input. The ratio is the image's own when
        the model offers it, else the nearest one it does."""
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        profile = catalog.profile(model_of(image, catalog))
        turn = await turns.turn_of(self.store, image) if profile.thinking else None
        return GenerationRequest(
            prompt=prompt,
            aspect_ratio=ratio_for(image, profile.aspect_ratios),
            inputs=() if turn is not None else (await self.image_as_input(image),),
            source_image_ids=(image.id,),
            context=dict(context or {}),
            model=profile.model,
            image_size=size_for(image, profile.image_sizes),
            history=(turn,) if turn is not None else (),
            source_prompts=source_prompts(image, own=True),
        )

    async def inputs_of(self, image: Image) -> tuple[InputImage, ...]:
        """The input images an earlier job used, read back from storage, for a Reroll."""
        keys = image.metadata.get("input_keys") or []
        mimes = image.metadata.get("input_mime_types") or []
        inputs = []
        for index, key in enumerate(keys):
            mime = mimes[index] if index < len(mimes) else "image/png"
            try:
                inputs.append(InputImage(await self.store.get(str(key)), str(mime)))
            except StorageError:
                raise ImageNotFound() from None
        return tuple(inputs)

    async def image_as_input(self, image: Image) -> InputImage:
        """A finished image's bytes as the input of an Edit."""
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        try:
            data = await self.store.get(image.storage_key)
        except StorageError:
            raise ImageNotFound() from None
        return InputImage(data, str(image.metadata.get("mime_type", "image/png")))


def model_of(image: Image, catalog: ModelCatalog) -> str | None:
    """The model that made `image` if members may still use it, else the default (None: the
    catalog's default, or its refusal when no model can be used)."""
    model = image.metadata.get("model")
    if image.is_generated and isinstance(model, str) and model in catalog.profiles:
        return model
    return catalog.default_model


def ratio_for(image: Image, ratios: Sequence[str]) -> str:
    """The image's requested ratio if the model accepts it; otherwise the supported ratio
    nearest to its real shape (an upload's own reduced ratio, e.g. 683:384, is never sent as a
    request ratio)."""
    stored = image.metadata.get("aspect_ratio")
    if image.is_generated and isinstance(stored, str) and stored in ratios:
        return stored
    width, height = image.dimensions or (0, 0)
    return nearest_ratio(width, height, ratios) or ("1:1" if "1:1" in ratios else ratios[0])


def size_for(image: Image, sizes: Sequence[str]) -> str | None:
    stored = image.metadata.get("image_size")
    return stored if isinstance(stored, str) and stored in sizes else None
