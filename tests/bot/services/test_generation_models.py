"""Models, sizes and costs; several images in one answer; Pro edits that keep their context;
prompts that show nothing; edits of uploads whose shape is no standard ratio."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image as PILImage

from bot.config import EconomyScope
from bot.i18n import t, translation
from bot.nanobanana import (
    ContentBlocked,
    InvalidRequest,
    NanobananaClient,
    NanobananaError,
    QuotaExhausted,
)
from bot.services.catalog import ModelCatalog
from bot.services.errors import InvalidInput
from bot.services.gallery import GalleryService
from bot.services.generation import (
    GenerationRequest,
    GenerationService,
    SourceImage,
    failure_reason,
)
from bot.services.members import Payer
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.uploads import UploadService
from storage.images import ImageRepository
from storage.models import ImageStatus, ImageType
from storage.objects import LocalObjectStore
from storage.users import UserRepository
from tests.bot.services.conftest import RecordingListener, coins_of, payer_for
from tests.bot.services.test_generation import make_service as base_service
from tests.fakes.nanobanana_server import Behaviour, FakeNanobanana, Mode
from tests.storage.helpers import assert_ledger_consistent

# Nano Banana (2.5 Flash Image): no sizes, three reference images, PNG answers. Google keeps it
# for keys that used it before (changelog, 2026-09-18): this module's key is one of those.
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image"
NB2 = "gemini-3.1-flash-image"
COSTS = {PRO: 150, f"{PRO}:4K": 300, f"{NB2}:512": 40}


@pytest.fixture(autouse=True)
def legacy_key(fake_api: FakeNanobanana) -> None:
    fake_api.keep_serving(FLASH)


def catalog() -> ModelCatalog:
    return ModelCatalog(FLASH, [PRO, NB2], default_cost=100, costs=COSTS)


def make_service(
    images: ImageRepository, store: LocalObjectStore, client: NanobananaClient
) -> GenerationService:
    return base_service(
        images, store, client, max_jobs_per_user=3, max_prompt_chars=100, catalog=catalog()
    )


@pytest.fixture
async def service(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient
) -> AsyncIterator[GenerationService]:
    generation = make_service(images, local_store, client)
    await generation.start()
    yield generation
    await generation.close(deadline=5)


@pytest.fixture
async def user(users: UserRepository) -> Payer:
    return await payer_for(users.db, 1, 1000)


async def run(service: GenerationService, user: Payer, request: GenerationRequest) -> Any:
    listener = RecordingListener()
    await service.submit(user, request, listener)
    await listener.done()
    assert listener.result is not None, listener.events
    return listener.result


# ------------------------------------------------------------------------------ catalog


def test_catalog_offers_models_sizes_and_costs() -> None:
    offered = catalog()
    assert offered.model_option and offered.size_option
    assert offered.sizes == ("512", "1K", "2K", "4K")
    assert {"1:8", "8:1", "21:9"} <= set(offered.ratios)
    assert [c.label for c in offered.models()] == [
        "Nano Banana · 100 coins",
        "Nano Banana Pro · from 150 coins",
        "Nano Banana 2 · from 40 coins",
    ]
    assert offered.cost(PRO, "4K") == 300 and offered.cost(PRO, "2K") == 150
    assert offered.cost(FLASH, None) == 100 and offered.cost(NB2, "1K") == 100
    single = ModelCatalog(FLASH, default_cost=100)
    assert not single.model_option and not single.size_option
    pro_only = ModelCatalog(PRO, default_cost=100, costs=COSTS)
    assert [c.label for c in pro_only.size_labels()] == [
        "1K · 150 coins", "2K · 150 coins", "4K · 300 coins",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "ratio", "size", "inputs", "key"),
    [
        ("imagen-4", "1:1", None, 0, "model.unsupported"),
        (FLASH, "1:1", "2K", 0, "size.not_supported"),
        (PRO, "1:1", "512", 0, "size.unsupported"),
        (PRO, "1:8", None, 0, "aspect.unsupported_model"),
        (FLASH, "1:1", None, 4, "images.too_many"),
    ],
)
async def test_a_request_the_model_cant_take_is_refused_before_charging(
    service: GenerationService, user: Payer, users: UserRepository, images: ImageRepository,
    fake_api: FakeNanobanana, model: str, ratio: str, size: str | None, inputs: int, key: str,
) -> None:  # fmt: skip
    source = png(8, 8)
    request = GenerationRequest(
        "a cat", ratio, inputs=(source,) * inputs, model=model, image_size=size
    )
    with pytest.raises(InvalidInput) as refused:
        await service.submit(user, request)
    assert refused.value.key == key
    assert "?" not in t("en", refused.value.key, **refused.value.params)
    assert await coins_of(users.db, user) == 1000
    assert await images.count_by_user(user.user_id, status=None) == 0
    assert await users.db.fetchval("SELECT COUNT(*) FROM jobs") == 0  # never a job
    assert fake_api.requests == []


@pytest.mark.parametrize(
    ("model", "size", "cost"),
    [(FLASH, None, 100), (PRO, None, 150), (PRO, "4K", 300), (NB2, "512", 40), (NB2, "2K", 100)],
)
async def test_each_model_and_size_costs_what_is_configured(
    service: GenerationService, user: Payer, users: UserRepository, fake_api: FakeNanobanana,
    model: str, size: str | None, cost: int,
) -> None:  # fmt: skip
    result = await run(service, user, GenerationRequest("a cat", "1:1", model=model,
                                                        image_size=size))  # fmt: skip
    assert result.image.coins_used == cost == service.cost_of(model, size)
    assert await coins_of(users.db, user) == 1000 - cost
    seen = fake_api.requests[0]
    assert seen.model == model
    # A sized model is always asked for a size: the member's, else its default.
    assert seen.image_size == (size or ("1K" if model != FLASH else None))
    assert result.image.metadata["model"] == model


async def test_nano_banana_2_takes_its_extra_ratios(
    service: GenerationService, user: Payer, fake_api: FakeNanobanana
) -> None:
    result = await run(service, user, GenerationRequest("a banner", "8:1", model=NB2))
    assert (result.image.metadata["width"], result.image.metadata["height"]) == (256, 32)


# ------------------------------------------------------------------------------ several images


async def test_every_image_of_an_answer_is_kept(
    service: GenerationService, user: Payer, images: ImageRepository,
    local_store: LocalObjectStore, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.script([Behaviour(Mode.OK, images=3)])
    result = await run(service, user, GenerationRequest("three cats"))
    assert len(result.extras) == 2
    for extra in result.extras:
        row = await images.get(extra.image.id)
        assert row is not None and row.status is ImageStatus.COMPLETED
        assert row.coins_used == 0 and row.metadata["extra_of"] == result.image.id
        assert row.prompt == "three cats" and row.type is ImageType.GENERATED
        assert await local_store.get(row.storage_key or "") == extra.data
        assert row.thumbnail_key and await local_store.exists(row.thumbnail_key)
    assert result.image.coins_used == 100 and result.image.metadata["images"] == 3
    gallery = GalleryService(
        images=images, users=UserRepository(images.db), store=local_store,
        permissions=PermissionService(scope=EconomyScope.GUILD),
    )  # fmt: skip
    owner = await UserRepository(images.db).get(user.user_id)
    assert owner is not None and owner.discord_id is not None
    page = await gallery.page(Actor(Identity(owner.discord_id, "x"), owner, False), owner)
    assert {i.id for i in page.images} == {result.image.id, *(e.image.id for e in result.extras)}
    await assert_ledger_consistent(images.db)


async def test_reroll_of_a_further_image_rerolls_its_job(
    service: GenerationService, user: Payer, images: ImageRepository, fake_api: FakeNanobanana
) -> None:
    fake_api.script([Behaviour(Mode.OK, images=2)])
    result = await run(service, user, GenerationRequest("two cats", "3:2", model=PRO))
    extra = await images.get(result.extras[0].image.id)
    assert extra is not None
    request = await service.reroll_request(extra)
    assert (request.prompt, request.aspect_ratio, request.model) == ("two cats", "3:2", PRO)


# ------------------------------------------------------------------------------ Pro edits


async def test_a_pro_edit_sends_the_previous_turn_and_signature_across_a_restart(
    images: ImageRepository, local_store: LocalObjectStore, client: NanobananaClient,
    user: Payer, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    first_service = make_service(images, local_store, client)
    await first_service.start()
    try:
        made = await run(first_service, user, GenerationRequest("a knight", "3:4", model=PRO,
                                                                image_size="2K"))  # fmt: skip
    finally:
        await first_service.close(deadline=5)
    signature = fake_api.signatures[-1]
    assert made.image.metadata["turn"]["parts"][0]["thought_signature"] == signature

    # A new process: everything the edit needs comes from the database and the store.
    service = make_service(images, local_store, client)
    await service.start()
    try:
        stored = await images.get(made.image.id)
        assert stored is not None
        request = await service.edit_request(stored, "now in winter")
        assert request.inputs == () and len(request.history) == 1
        edited = await run(service, user, request)
        seen = fake_api.requests[-1]
        assert seen.signatures == [signature]
        assert seen.history_images == [("image/jpeg", made.data)]
        assert seen.contents[0]["parts"] == [{"text": "a knight"}]
        assert (seen.prompt, seen.aspect_ratio, seen.image_size) == ("now in winter", "3:4", "2K")
        assert edited.image.coins_used == 150

        # A Reroll of the edit sends the same earlier turn again.
        rerun = await service.reroll_request(edited.image)
        assert rerun.history == request.history
        await run(service, user, rerun)
        assert fake_api.requests[-1].signatures == [signature]
        assert fake_api.requests[-1].prompt == "now in winter"
    finally:
        await service.close(deadline=5)


async def test_a_nano_banana_edit_sends_the_image_as_an_input(
    service: GenerationService, user: Payer, fake_api: FakeNanobanana
) -> None:
    made = await run(service, user, GenerationRequest("a fox", "16:9"))
    assert "turn" not in made.image.metadata  # no signatures: nothing to continue
    request = await service.edit_request(made.image, "make it purple")
    assert request.history == () and request.inputs[0].data == made.data
    await run(service, user, request)
    assert fake_api.requests[-1].images == [("image/png", made.data)]
    assert fake_api.requests[-1].aspect_ratio == "16:9"


# ------------------------------------------------------------------------------ uploads


def png(width: int, height: int) -> SourceImage:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), "teal").save(out, "PNG")
    return SourceImage(out.getvalue(), "image/png")


@pytest.mark.parametrize(
    ("width", "height", "model", "ratio"),
    [
        (1366, 768, FLASH, "16:9"),
        (100, 37, FLASH, "21:9"),
        (37, 100, FLASH, "9:16"),
        (1000, 130, NB2, "8:1"),
        (760, 1000, PRO, "3:4"),
    ],
)
async def test_an_upload_of_any_shape_can_be_edited(
    service: GenerationService, user: Payer, images: ImageRepository,
    local_store: LocalObjectStore, fake_api: FakeNanobanana, width: int, height: int,
    model: str, ratio: str,
) -> None:  # fmt: skip
    """The upload's own reduced ratio (683:384, 1.78:1...) used to be sent as the request's
    ratio and refused; the nearest ratio the model supports is asked for instead."""
    uploads = UploadService(images=images, store=local_store, max_bytes=10**7)
    uploaded = (await uploads.upload(user, png(width, height).data, filename="odd.png")).image
    if model != FLASH:
        service.catalog.default_model = model
    request = await service.edit_request(uploaded, "add a hat")
    assert request.aspect_ratio == ratio and request.model == model
    await run(service, user, request)
    assert fake_api.requests[-1].aspect_ratio == ratio


# ------------------------------------------------------------------------------ prompts


@pytest.mark.parametrize(
    "prompt",
    ["\u200b", "\ufeff", "\u2060", "\x00", "\u200b\u200c\u200d\u2060\ufeff", "\x07\x1b\x7f",
     " \u3164 \u2800 ", "\u0301\u0308", "\u202e\u2066"],
)  # fmt: skip
async def test_invisible_prompts_are_empty_and_free(
    service: GenerationService, user: Payer, users: UserRepository, images: ImageRepository,
    fake_api: FakeNanobanana, prompt: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        await service.submit(user, GenerationRequest(prompt))
    assert refused.value.key == "prompt.empty"
    assert await coins_of(users.db, user) == 1000
    assert await images.count_by_user(user.user_id, status=None) == 0
    assert await users.db.fetchval("SELECT COUNT(*) FROM jobs") == 0  # never a job
    assert fake_api.requests == []


def test_visible_prompts_keep_their_emoji_and_lose_control_characters() -> None:
    service = GenerationService.__new__(GenerationService)
    service.max_prompt_chars = 100
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert service.validate_prompt(f"\x00 a {family}\x07 family\n") == f"a {family} family"
    assert service.validate_prompt("¿?") == "¿?"


# ------------------------------------------------------------------------------ messages


@pytest.mark.parametrize(
    "error",
    [
        *(ContentBlocked(r, stage="prompt") for r in
          ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY",
           "BLOCKED_REASON_UNSPECIFIED")),
        *(ContentBlocked(r) for r in
          ("SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
           "MALFORMED_FUNCTION_CALL", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
           "IMAGE_RECITATION", "IMAGE_OTHER", "MAX_TOKENS", "NO_IMAGE", "UNEXPECTED_TOOL_CALL",
           "TOO_MANY_TOOL_CALLS", "SOMETHING_NEW")),
        QuotaExhausted("x", kind="none", quota_id=None),
        QuotaExhausted("x", kind="daily", quota_id="GenerateRequestsPerDayPerProjectPerModel"),
        *(InvalidRequest("x", code=c) for c in ("too_large", "location", "billing", "model")),
    ],
    ids=repr,
)  # fmt: skip
def test_every_reason_has_its_own_words_in_both_languages(error: NanobananaError) -> None:
    key, params = failure_reason(error)
    for language in ("en", "es"):
        assert translation(language, key) is not None, key
        text = t(language, key, **params)
        assert "{" not in text and text[-1] != "?"
        for code in ("_SAFETY", "PROHIBITED", "RECITATION", "OTHER", "SPII", "BLOCKLIST"):
            assert code not in text  # never a raw API code
    unsafe_not_meant = ("OTHER", "IMAGE_OTHER", "MAX_TOKENS", "LANGUAGE", "MALFORMED_FUNCTION_CALL")
    if isinstance(error, ContentBlocked) and error.reason in unsafe_not_meant:
        assert "safety" not in t("en", key).lower()
    if isinstance(error, ContentBlocked) and error.stage == "prompt":
        assert "generated image" not in t("en", key)
