"""The HTTP side: one aiohttp session, retries, deadlines, and images fitted to the request.

`NanobananaClient.generate` validates a request against the model's profile (nothing invalid
goes on the wire), fits the images into the model's inline request limit (through
`bot.imaging`, in a worker thread), posts it, retries only what is worth retrying (408/429/5xx,
timeouts, dropped connections) with full-jitter backoff or the server's own delay, never sleeps
past its deadline, and turns every failure into a `NanobananaError`.

    async with NanobananaClient(api_key) as client:
        answer = await client.generate("a banana in a tuxedo", aspect_ratio="16:9")

DESIGN section 6 is the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import quote

import aiohttp

from bot import imaging
from bot.nanobanana import wire
from bot.nanobanana.catalogue import MAX_PAGE_SIZE, MAX_PAGES, ListedModel, parse_model, parse_page
from bot.nanobanana.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    MalformedResponse,
    NanobananaError,
    ProviderUnavailable,
)
from bot.nanobanana.profiles import LINEUP, NANO_BANANA_2_1, Lineup, ModelProfile
from bot.nanobanana.values import (
    GeneratedImage,
    InputImage,
    ModelPart,
    OutputImage,
    TextAnswer,
    Turn,
)

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger("bot.nanobanana")

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"
#: The model of a client built without one (the bot itself chooses per call: see
#: bot.services.models; `NANOBANANA_MODEL=auto` asks the API which models exist).
DEFAULT_MODEL: Final = NANO_BANANA_2_1
#: Seconds for one page of the models list.
LIST_TIMEOUT: Final = 20.0

#: Inputs whose longest side is larger are downscaled to this.
MAX_INPUT_SIDE: Final = 2048
#: Room left in the inline request for the prompt, earlier texts, signatures and JSON.
REQUEST_HEADROOM: Final = 2 * 1024 * 1024
#: A response larger than this is refused rather than buffered.
MAX_RESPONSE_BYTES: Final = 96 * 1024 * 1024
#: Statuses worth another attempt.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
#: Hard bounds on `max_attempts`.
MAX_ATTEMPTS_LIMIT: Final = 20
#: Largest image the model may answer with (Nano Banana 2 at 4K and 8:1 is about 17 MP).
MAX_OUTPUT_PIXELS: Final = 64_000_000
#: Longest side of a model's answer (sent back as it is in a later turn).
MAX_OUTPUT_SIDE: Final = 16384
#: One page of the models list larger than this is refused (Google's are tens of kilobytes).
MAX_LIST_BYTES: Final = 8 * 1024 * 1024

_PROMPT_LOG_CHARS: Final = 60


@dataclass
class _CallState:
    attempts: int = 0
    sent_at: float = 0.0
    answered_at: float = 0.0
    #: True while the caller's slot is being entered (what it raises is the caller's).
    entering_slot: bool = False


class NanobananaClient:
    """Calls `POST {base_url}/v1beta/models/{model}:generateContent` for image generation.

    - `model`: the default model; `generate(model=...)` picks another per call.
    - `timeout`: seconds for one HTTP attempt (connect, send, wait, read).
    - `max_attempts`: total HTTP attempts per `generate` call (1 = no retries).
    - `deadline`: seconds for the whole `generate` call, retries and waits included
      (default `timeout * max_attempts`); the client never sleeps past it.
    - `backoff_base`/`backoff_max`: full-jitter backoff, `uniform(0, min(max, base * 2**n))`,
      used when the server doesn't say how long to wait.
    - `session`: an aiohttp session to borrow (not closed by `close()`); otherwise the client
      creates one on first use and closes it in `close()`.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout: float = 120.0,
        max_attempts: int = 4,
        session: aiohttp.ClientSession | None = None,
        deadline: float | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        lineup: Lineup = LINEUP,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be > 0")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        model = model.strip().removeprefix("models/")
        if not model:
            raise ValueError("model must not be empty")

        self._api_key = api_key.strip()
        self.base_url: str = base_url.rstrip("/")
        self.model: str = model
        self.timeout: float = float(timeout)
        self.max_attempts: int = max_attempts
        self.deadline: float = float(deadline) if deadline is not None else timeout * max_attempts
        self.backoff_base: float = float(backoff_base)
        self.backoff_max: float = float(backoff_max)
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._random = random.Random()
        #: The profiles a call is checked against when the caller gives none.
        self.lineup = lineup
        #: Told of every HTTP attempt to generate: (model, status, seconds), the status an
        #: HTTP code or "timeout" / "connection_error" (for /metrics). Must not raise.
        self.on_attempt: Callable[[str, str, float], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> NanobananaClient:
        """Build a client from `Settings`. Without `GEMINI_API_KEY` every call fails fast with
        `AuthenticationFailed` (and no request), so the bot can still start."""
        key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else ""
        model = settings.nanobanana_model
        return cls(
            key,
            base_url=settings.nanobanana_base_url or DEFAULT_BASE_URL,
            model=DEFAULT_MODEL if model == "auto" else model,
            timeout=settings.nanobanana_timeout,
            max_attempts=settings.nanobanana_max_attempts,
        )

    @property
    def configured(self) -> bool:
        """Whether an API key was given."""
        return bool(self._api_key)

    @property
    def profile(self) -> ModelProfile:
        """The default model's profile."""
        return self.lineup.profile(self.model)

    def __repr__(self) -> str:
        return f"NanobananaClient(base_url={self.base_url!r}, model={self.model!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client created it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _url(self, model: str) -> str:
        return f"{self.base_url}/v1beta/models/{quote(model, safe='-._~')}:generateContent"

    # ---------------------------------------------------------------- models

    async def list_models(self) -> list[ListedModel]:
        """Every model the key may use (`GET /v1beta/models`, every page, at most 1000 a
        page). Raises a NanobananaError (AuthenticationFailed for a refused key,
        ProviderUnavailable when the API can't be reached, InvalidRequest when the endpoint
        doesn't exist, e.g. behind a proxy that only forwards generateContent)."""
        models: list[ListedModel] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            params = {"pageSize": str(MAX_PAGE_SIZE), **({"pageToken": token} if token else {})}
            payload = await self._get(f"{self.base_url}/v1beta/models", params, model=None)
            page, token = parse_page(payload)
            models.extend(page)
            if token is None:
                return models
        raise MalformedResponse(f"the models list did not end within {MAX_PAGES} pages")

    async def get_model(self, model: str) -> ListedModel:
        """One model (`GET /v1beta/models/{id}`); ModelNotFound when the API doesn't know it."""
        model = model.strip().removeprefix("models/")
        url = f"{self.base_url}/v1beta/models/{quote(model, safe='-._~')}"
        payload = await self._get(url, {}, model=model)
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise MalformedResponse("the model's description is not valid JSON") from None
        found = parse_model(document)
        if found is None:
            raise MalformedResponse("the model's description has no name")
        return found

    async def _get(self, url: str, params: Mapping[str, str], *, model: str | None) -> bytes:
        """One GET of the models API (no retries: callers list again later)."""
        if self._closed:
            raise ProviderUnavailable("the client is closed", retryable=False)
        if not self._api_key:
            raise AuthenticationFailed("no API key configured (GEMINI_API_KEY)")
        session = self._get_session()
        try:
            async with session.get(
                url,
                params=params,
                headers={"x-goog-api-key": self._api_key},
                timeout=aiohttp.ClientTimeout(total=min(self.timeout, LIST_TIMEOUT)),
                allow_redirects=False,
            ) as response:
                status, headers = response.status, response.headers
                body = await response.content.read(MAX_LIST_BYTES + 1)
        except TimeoutError:
            raise ProviderUnavailable("no answer from the models list") from None
        except aiohttp.ClientError as error:
            raise ProviderUnavailable(f"cannot reach the API: {type(error).__name__}") from None
        if len(body) > MAX_LIST_BYTES:
            raise MalformedResponse(f"models list page larger than {MAX_LIST_BYTES} bytes")
        if status != 200:
            if status == 404 and model is None:
                # No models endpoint at this base URL (a proxy forwarding generateContent
                # only): not a missing model.
                raise InvalidRequest(f"no models list at {self.base_url}", status=404)
            failure, _ = wire.error_for_status(
                status, headers, body, api_key=self._api_key, model=model or "?"
            )
            raise failure
        return body

    # ---------------------------------------------------------------- generate

    async def generate(
        self,
        prompt: str,
        images: Sequence[InputImage] = (),
        aspect_ratio: str | None = None,
        *,
        image_size: str | None = None,
        model: str | None = None,
        history: Sequence[Turn] = (),
        slot: AbstractAsyncContextManager[Any] | None = None,
        thinking_level: str | None = None,
        profile: ModelProfile | None = None,
        grounded: bool = False,
    ) -> GeneratedImage:
        """Generate from `prompt`, optional input images to edit or draw from, and earlier
        turns to continue (multi-turn editing), grounded in Google Search when `grounded`
        (refused for a model whose profile has no grounding). Returns every image of the
        answer, with the model's text and a grounded answer's sources.

        `profile` is what the model accepts (the caller's, with the owner's overrides and
        what the API refused); by default the client's lineup's. `thinking_level` is sent
        as `thinkingConfig.thinkingLevel` (one of the profile's levels).

        `slot` (e.g. a semaphore shared by the callers) is held around each HTTP exchange
        only: preparing the body, waiting between retries and decoding the answer happen
        outside it, so a bounded number of slots keeps the API busy rather than the CPU.

        Raises a `NanobananaError` subclass on any failure.
        """
        if profile is None or (model is not None and profile.model != model.strip()):
            profile = self.lineup.profile(model or self.model)
        loop = asyncio.get_running_loop()
        started = loop.time()
        state = _CallState()
        outcome = "cancelled"
        outputs = 0
        try:
            result = await self._generate(
                profile, prompt, images, aspect_ratio, image_size, history, started, state, slot,
                thinking_level, grounded,
            )  # fmt: skip
            outcome = "ok"
            outputs = len(result.images)
            return result
        except NanobananaError as error:
            error.attempts = state.attempts
            outcome = _describe_outcome(error)
            if error.owner_hint:
                logger.error("nanobanana: the bot's owner must act: %s", error.owner_hint)
            raise
        except Exception as error:  # not an API failure: log it plainly and re-raise
            # The caller's slot may refuse (its service stopping): that is no bug of ours.
            outcome = f"{'slot' if state.entering_slot else 'bug'}:{type(error).__name__}"
            raise
        finally:
            logger.info(
                "nanobanana generate outcome=%s model=%s size=%s attempts=%d latency=%.3fs "
                "images=%d history=%d outputs=%d aspect_ratio=%s prompt=%r",
                outcome,
                profile.model,
                image_size,
                state.attempts,
                loop.time() - started,
                len(images),
                len(history),
                outputs,
                aspect_ratio,
                _shorten(prompt),
            )

    async def _generate(
        self,
        profile: ModelProfile,
        prompt: str,
        images: Sequence[InputImage],
        aspect_ratio: str | None,
        image_size: str | None,
        history: Sequence[Turn],
        started: float,
        state: _CallState,
        slot: AbstractAsyncContextManager[Any] | None = None,
        thinking_level: str | None = None,
        grounded: bool = False,
    ) -> GeneratedImage:
        if self._closed:
            raise ProviderUnavailable("the client is closed", retryable=False)
        validate(profile, prompt, images, aspect_ratio, image_size, history, thinking_level)
        if grounded and not profile.grounding:
            raise InvalidRequest(
                f"{profile.model} has no Google Search grounding",
                code="grounding",
                user_message=f"{profile.name} can't search the web for an image.",
            )
        if not self._api_key:
            raise AuthenticationFailed(
                "no API key configured (GEMINI_API_KEY)",
                user_message="Image generation isn't set up on this bot yet.",
            )
        body = await asyncio.to_thread(
            _prepare_body, profile, prompt, tuple(images), aspect_ratio, image_size,
            tuple(history), thinking_level, grounded,
        )  # fmt: skip
        payload = await self._exchange(profile.model, body, started, state, slot)
        answer = await asyncio.to_thread(_read_answer, payload, profile.model)
        del payload  # the JSON text: the decoded images are all that is kept
        loop = asyncio.get_running_loop()
        return replace(
            answer,
            attempts=state.attempts,
            latency=loop.time() - started,
            sent_at=state.sent_at,
            answered_at=state.answered_at,
            decoded_at=time.monotonic(),
        )

    async def describe(
        self,
        image: InputImage,
        instruction: str,
        *,
        model: str,
        max_output_tokens: int = 400,
        slot: AbstractAsyncContextManager[Any] | None = None,
    ) -> TextAnswer:
        """Ask a text model (`model`) about one image: `instruction` says what to write (a
        caption, a prompt that would make it). Retries as `generate` does; raises a
        `NanobananaError` subclass on any failure (ModelNotFound when the model is gone)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        state = _CallState()
        outcome = "cancelled"
        try:
            if self._closed:
                raise ProviderUnavailable("the client is closed", retryable=False)
            if not self._api_key:
                raise AuthenticationFailed(
                    "no API key configured (GEMINI_API_KEY)",
                    user_message="The bot's Gemini API key isn't set up yet.",
                )
            body = await asyncio.to_thread(
                wire.build_text_body, instruction, image, max_output_tokens=max_output_tokens
            )
            payload = await self._exchange(model, body, started, state, slot)
            answer = wire.parse_text_answer(payload, model)
            outcome = "ok"
            return replace(answer, attempts=state.attempts, latency=loop.time() - started)
        except NanobananaError as error:
            error.attempts = state.attempts
            outcome = _describe_outcome(error)
            if error.owner_hint:
                logger.error("nanobanana: the bot's owner must act: %s", error.owner_hint)
            raise
        finally:
            logger.info(
                "nanobanana describe outcome=%s model=%s attempts=%d latency=%.3fs",
                outcome, model, state.attempts, loop.time() - started,
            )  # fmt: skip

    async def _exchange(
        self,
        model: str,
        body: bytes,
        started: float,
        state: _CallState,
        slot: AbstractAsyncContextManager[Any] | None,
    ) -> bytes | bytearray:
        """POST `body` to `model`'s generateContent, retrying what is worth retrying within
        the deadline (`slot` held around each HTTP exchange only); the 200 answer's body.
        Raises the NanobananaError of the last failure."""
        url = self._url(model)

        loop = asyncio.get_running_loop()
        deadline_at = started + self.deadline
        last_error: NanobananaError | None = None
        # A request sent and never answered (see ProviderUnavailable.maybe_billed).
        unanswered = False
        for retry_index in range(self.max_attempts):
            remaining = deadline_at - loop.time()
            if remaining <= 0:
                break
            state.attempts += 1
            server_delay: float | None = None
            try:
                state.entering_slot = True
                async with slot or contextlib.nullcontext():
                    state.entering_slot = False
                    state.sent_at = time.monotonic()
                    status, headers, payload = await self._post(
                        url, body, min(self.timeout, remaining)
                    )
                    state.answered_at = time.monotonic()
            except TimeoutError:
                self._attempted(model, "timeout", state)
                unanswered = unanswered or not state.entering_slot
                last_error = ProviderUnavailable(
                    f"no answer within {min(self.timeout, remaining):.2f}s"
                )
            except (aiohttp.InvalidURL, aiohttp.ClientSSLError) as error:
                self._attempted(model, "connection_error", state)
                raise ProviderUnavailable(
                    f"cannot reach the API: {type(error).__name__}", retryable=False
                ) from None
            except aiohttp.ClientError as error:
                self._attempted(model, "connection_error", state)
                # Sent, unless the connection itself could not be made.
                sent = not state.entering_slot and not isinstance(
                    error, aiohttp.ClientConnectorError
                )
                unanswered = unanswered or sent
                last_error = ProviderUnavailable(f"connection error: {type(error).__name__}")
            else:
                self._attempted(model, str(status), state)
                if status == 200:
                    return payload
                api_error, server_delay = wire.error_for_status(
                    status, headers, payload, api_key=self._api_key, model=model
                )
                if status not in RETRYABLE_STATUSES or not api_error.retryable:
                    raise api_error
                last_error = api_error

            if retry_index + 1 >= self.max_attempts:
                break
            delay = server_delay if server_delay is not None else self._backoff(retry_index)
            if loop.time() + delay >= deadline_at:
                logger.debug(
                    "nanobanana not retrying: waiting %.2fs would pass the deadline", delay
                )
                break
            logger.debug(
                "nanobanana attempt %d failed (%s); retrying in %.2fs",
                state.attempts,
                last_error,
                delay,
            )
            await asyncio.sleep(delay)

        if last_error is None:
            last_error = ProviderUnavailable(
                f"deadline of {self.deadline:.2f}s passed before a request could be sent"
            )
        if isinstance(last_error, ProviderUnavailable) and unanswered:
            last_error.maybe_billed = True
        raise last_error

    def _attempted(self, model: str, status: str, state: _CallState) -> None:
        """Tell `on_attempt` about one HTTP attempt that was sent (never one stuck waiting
        for the caller's slot)."""
        if self.on_attempt is None or state.entering_slot or not state.sent_at:
            return
        try:
            self.on_attempt(model, status, time.monotonic() - state.sent_at)
        except Exception:
            logger.exception("the attempt observer failed")

    def _backoff(self, retry_index: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retry_index)
        return self._random.uniform(0.0, ceiling)

    async def _post(
        self, url: str, body: bytes, seconds: float
    ) -> tuple[int, Mapping[str, str], bytes | bytearray]:
        """One HTTP attempt: status, headers and the (size-capped) body."""
        session = self._get_session()
        headers = {"x-goog-api-key": self._api_key, "Content-Type": "application/json"}
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,  # never hand the key to another host
        ) as response:
            status = response.status
            length = response.content_length
            if length is not None and length > MAX_RESPONSE_BYTES:
                return status, response.headers, _oversized(status)
            if length is not None:
                # Announced and within the cap: one read, no Python loop over the chunks.
                return status, response.headers, await response.read()
            # Chunked (no length announced): read while counting, to stop at the cap.
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(1 << 20):
                buffer.extend(chunk)
                if len(buffer) > MAX_RESPONSE_BYTES:
                    return status, response.headers, _oversized(status)
            return status, response.headers, buffer


def _oversized(status: int) -> bytes:
    """An over-large success is malformed; an over-large error body is simply dropped."""
    if status == 200:
        raise MalformedResponse(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    return b""


# --------------------------------------------------------------------------------------------
# Request side
# --------------------------------------------------------------------------------------------


def validate(
    profile: ModelProfile,
    prompt: str,
    images: Sequence[InputImage],
    aspect_ratio: str | None,
    image_size: str | None,
    history: Sequence[Turn] = (),
    thinking_level: str | None = None,
) -> None:
    """Refuse, before any request, what the model's profile says the API would refuse."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest(
            "empty prompt", code="prompt", user_message="Please describe the image you want."
        )
    if aspect_ratio is not None and aspect_ratio not in profile.aspect_ratios:
        raise InvalidRequest(
            f"unsupported aspect ratio {aspect_ratio!r} for {profile.model}",
            code="ratio",
            user_message="Aspect ratio must be one of " + ", ".join(profile.aspect_ratios) + ".",
        )
    if image_size is not None and image_size not in profile.image_sizes:
        sizes = ", ".join(profile.image_sizes)
        raise InvalidRequest(
            f"unsupported image size {image_size!r} for {profile.model}",
            code="size",
            user_message=(
                f"Image size must be one of {sizes}."
                if sizes
                else f"{profile.name} has no image size setting."
            ),
        )
    if thinking_level is not None and thinking_level not in profile.thinking_levels:
        levels = ", ".join(profile.thinking_levels)
        raise InvalidRequest(
            f"unsupported thinking level {thinking_level!r} for {profile.model}",
            code="thinking",
            user_message=(
                f"Thinking level must be one of {levels}."
                if levels
                else f"{profile.name} has no thinking level setting."
            ),
        )
    earlier = [p.image for turn in history for p in turn.parts if p.image is not None]
    count = len(images) + len(earlier)
    if count > profile.max_reference_images:
        raise InvalidRequest(
            f"{count} images (max {profile.max_reference_images} for {profile.model})",
            code="too_many_images",
            user_message=f"You can attach at most {profile.max_reference_images} images.",
        )
    for index, image in enumerate([*earlier, *images], 1):
        if not isinstance(image, InputImage) or not image.data:
            raise InvalidRequest(
                f"input image {index} is empty",
                code="image",
                user_message=f"Image {index} is empty.",
            )


def _b64_len(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _not_readable(index: int, problem: imaging.ImageProblem) -> InvalidRequest:
    if problem.code in ("too_many_pixels", "too_large"):
        user_message = f"Image {index} is too large."
    else:
        user_message = f"Image {index} isn't a PNG, JPEG or WebP image I can read."
    return InvalidRequest(
        f"input image {index}: {problem.code} ({problem})", code="image", user_message=user_message
    )


def fit_images(
    images: Sequence[InputImage], budget: int, sides: Sequence[int] | None = None
) -> list[InputImage]:
    """Check every image, then fit them all in `budget` bytes of base64, smallest first, so
    small images pass untouched and large ones share what is left (through `bot.imaging`).
    `sides[i]` is the longest side image i may keep (`MAX_INPUT_SIDE` by default)."""
    infos = []
    for index, image in enumerate(images, 1):
        try:
            infos.append(imaging.probe_image(image.data))
        except imaging.ImageProblem as problem:
            raise _not_readable(index, problem) from None
    prepared: list[InputImage | None] = [None] * len(images)
    remaining = budget
    order = sorted(range(len(images)), key=lambda i: len(images[i].data))
    for position, i in enumerate(order):
        share = remaining // (len(order) - position)
        raw_share = max(1, share * 3 // 4 - 4)
        try:
            data, mime = imaging.fit_for_model(
                images[i].data,
                max_bytes=raw_share,
                max_side=sides[i] if sides is not None else MAX_INPUT_SIDE,
            )
        except imaging.ImageProblem as problem:
            raise _not_readable(i + 1, problem) from None
        if data is images[i].data:
            mime = infos[i].mime_type  # the bytes decide, not the caller's hint
        prepared[i] = InputImage(data, mime)
        remaining -= _b64_len(len(data))
    return [item for item in prepared if item is not None]


def _prepare_body(
    profile: ModelProfile,
    prompt: str,
    images: tuple[InputImage, ...],
    aspect_ratio: str | None,
    image_size: str | None,
    history: tuple[Turn, ...],
    thinking_level: str | None = None,
    grounded: bool = False,
) -> bytes:
    """Fit every image (earlier turns' and new ones) in one budget and build the body."""
    earlier = [p.image for turn in history for p in turn.parts if p.image is not None]
    # The model's own images go back as it made them (a 4K answer stays 4K) unless the
    # request's byte budget says otherwise; members' inputs are capped at MAX_INPUT_SIDE.
    sides = [MAX_OUTPUT_SIDE] * len(earlier) + [MAX_INPUT_SIDE] * len(images)
    fitted = fit_images([*earlier, *images], profile.max_request_bytes - REQUEST_HEADROOM, sides)
    fitted_earlier, fitted_inputs = fitted[: len(earlier)], fitted[len(earlier) :]
    position = iter(fitted_earlier)
    turns = tuple(
        Turn(
            turn.prompt,
            tuple(
                ModelPart(p.text, next(position), p.thought_signature) if p.image is not None else p
                for p in turn.parts
            ),
        )
        for turn in history
    )
    body = wire.build_body(
        prompt, fitted_inputs, aspect_ratio=aspect_ratio, image_size=image_size, history=turns,
        thinking_level=thinking_level, grounded=grounded,
    )  # fmt: skip
    if len(body) > profile.max_request_bytes:
        raise InvalidRequest(
            f"request of {len(body)} bytes exceeds {profile.max_request_bytes}",
            code="too_large",
            user_message="The request is too large. Try a shorter prompt or smaller images.",
        )
    return body


# --------------------------------------------------------------------------------------------
# Response side
# --------------------------------------------------------------------------------------------


def _read_answer(payload: bytes | bytearray, model: str) -> GeneratedImage:
    """Parse a 200 answer and read each image's size and type from its bytes."""
    answer = wire.parse_answer(payload)
    images = []
    for number, raw in enumerate(answer.images, 1):
        try:
            info = imaging.probe_image(raw.data, max_pixels=MAX_OUTPUT_PIXELS)
        except imaging.ImageProblem as problem:
            raise MalformedResponse(
                f"image {number} of the answer is not a readable image ({problem.code})"
            ) from None
        images.append(
            OutputImage(raw.data, info.mime_type, info.width, info.height, raw.thought_signature)
        )
    first = images[0]
    return GeneratedImage(
        data=first.data,
        mime_type=first.mime_type,
        width=first.width,
        height=first.height,
        model=answer.model or model,
        text=answer.text,
        usage=answer.usage,
        attempts=0,
        latency=0.0,
        images=tuple(images),
        parts=tuple(answer.parts),
        finish_reason=answer.finish_reason,
        model_status=answer.model_status,
        grounding=answer.grounding,
    )


# --------------------------------------------------------------------------------------------
# Logging helpers
# --------------------------------------------------------------------------------------------


def _shorten(prompt: object) -> str:
    text = prompt if isinstance(prompt, str) else repr(type(prompt))
    return text if len(text) <= _PROMPT_LOG_CHARS else text[:_PROMPT_LOG_CHARS] + "…"


def _describe_outcome(error: NanobananaError) -> str:
    name = type(error).__name__
    if isinstance(error, ContentBlocked):
        detail = f"{name}:{error.stage}:{error.reason}"
        if error.finish_message:
            detail += f" finish_message={error.finish_message[:200]!r}"
        return detail
    if isinstance(error, InvalidRequest):
        return f"{name}:{error.code}" + (f":{error.status}" if error.status else "")
    if error.status is not None:
        return f"{name}:{error.status}"
    return name
