"""Earlier turns of a conversation with a thinking model, kept with the images they made.

Nano Banana Pro and Nano Banana 2 answer with `thoughtSignature`s; an Edit sends the image's
own turn (its prompt, the model's parts with their signatures) back so the model keeps its
context, and a Reroll of that edit sends the same turn again. Both survive restarts: texts and
signatures live in the image's metadata, images in object storage under their keys.

- `metadata.turn`: the answer that made this image, `{"parts": [{"text"|"key", "mime_type",
  "thought_signature"}...]}` (its images are the job's own objects);
- `metadata.history`: the earlier turns the job was sent with, `[{"prompt", "parts"}]`, their
  images copied under `inputs/` (listed by `storage.images.history_keys`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bot.nanobanana import GeneratedImage, InputImage, ModelPart, OutputImage, Turn
from storage.models import Image
from storage.objects import ObjectStore, StorageError

log = logging.getLogger(__name__)

StoredObject = tuple[str, bytes, str]  # key, bytes, content type


def extension(mime_type: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type, "png")


def _signature(value: str | None) -> dict[str, str]:
    return {"thought_signature": value} if value else {}


def history_to_store(
    history: Sequence[Turn], user_id: str, job_id: str
) -> tuple[list[StoredObject], list[dict[str, Any]]]:
    """The objects to write and the metadata that describes a job's earlier turns."""
    objects: list[StoredObject] = []
    turns: list[dict[str, Any]] = []
    for t, turn in enumerate(history):
        parts: list[dict[str, Any]] = []
        for p, part in enumerate(turn.parts):
            signature = _signature(part.thought_signature)
            if part.image is not None:
                key = f"inputs/{user_id}/{job_id}-h{t}-{p}.{extension(part.image.mime_type)}"
                objects.append((key, part.image.data, part.image.mime_type))
                parts.append({"key": key, "mime_type": part.image.mime_type, **signature})
            elif part.text is not None:
                parts.append({"text": part.text, **signature})
        turns.append({"prompt": turn.prompt, "parts": parts})
    return objects, turns


def answer_turn(
    generated: GeneratedImage, keys: Sequence[str], images: Sequence[OutputImage]
) -> dict[str, Any] | None:
    """The answer as a turn to send back later (`metadata.turn`), its images by the keys they
    were stored under; None when the answer carries no signatures (nothing to continue)."""
    if not generated.thought_signatures:
        return None
    parts: list[dict[str, Any]] = []
    for part in generated.parts:
        signature = _signature(part.thought_signature)
        index = part.image_index
        if index is not None and 0 <= index < len(images):
            parts.append({"key": keys[index], "mime_type": images[index].mime_type, **signature})
        elif part.text is not None:
            parts.append({"text": part.text, **signature})
    return {"parts": parts}


async def load_parts(store: ObjectStore, raw_parts: object) -> tuple[ModelPart, ...]:
    """Stored turn parts (texts, and images by object key) with their signatures; an image
    whose object is gone is left out."""
    parts = []
    for raw in raw_parts if isinstance(raw_parts, list) else []:
        if not isinstance(raw, dict):
            continue
        signature = raw.get("thought_signature")
        signature = signature if isinstance(signature, str) else None
        key = raw.get("key")
        if isinstance(key, str):
            try:
                data = await store.get(key)
            except StorageError:
                log.warning("earlier turn image %s is gone; sent without it", key)
                continue
            mime = str(raw.get("mime_type") or "image/png")
            parts.append(ModelPart(image=InputImage(data, mime), thought_signature=signature))
        elif isinstance(raw.get("text"), str):
            parts.append(ModelPart(text=str(raw["text"]), thought_signature=signature))
    return tuple(parts)


async def turn_of(store: ObjectStore, image: Image) -> Turn | None:
    """The exchange that made `image` (its prompt and the model's answer with signatures),
    or None when there is none to continue (an upload, an older image, a further image of an
    answer, or its objects are gone)."""
    turn = image.metadata.get("turn")
    if not image.prompt or not isinstance(turn, dict):
        return None
    parts = await load_parts(store, turn.get("parts"))
    if not any(p.image is not None for p in parts):
        return None
    return Turn(image.prompt, parts)


async def history_of(store: ObjectStore, image: Image) -> tuple[Turn, ...]:
    """The earlier turns a job was sent with, read back for a Reroll."""
    turns = []
    for raw in image.metadata.get("history") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("prompt"), str):
            continue
        parts = await load_parts(store, raw.get("parts"))
        if parts:
            turns.append(Turn(str(raw["prompt"]), parts))
    return tuple(turns)
