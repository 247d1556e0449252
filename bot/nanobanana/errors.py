"""The client's typed errors: what went wrong, for logs, members and the bot's owner.

`str(error)` is for logs (no secrets, no payloads); `user_message` is a short English sentence
fit for a member (the bot shows localised messages from `code`/`reason` instead); `owner_hint`
says what the owner must fix when only they can (billing, quota, region, key, model name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

__all__ = [
    "AuthenticationFailed",
    "ContentBlocked",
    "InvalidRequest",
    "MalformedResponse",
    "ModelNotFound",
    "NanobananaError",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RateLimited",
]


class NanobananaError(Exception):
    """Base of every error the client raises.

    `retryable` says whether trying again later may succeed; `status` is the HTTP status
    that caused it, when there was one; `attempts` is set by the client.
    """

    default_user_message: ClassVar[str] = "Image generation failed. Please try again later."
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        user_message: str | None = None,
        retryable: bool | None = None,
        status: int | None = None,
        owner_hint: str | None = None,
    ) -> None:
        super().__init__(message or self.default_user_message)
        self.user_message: str = user_message or self.default_user_message
        self.retryable: bool = self.default_retryable if retryable is None else retryable
        self.status: int | None = status
        #: What the bot's owner must do about it (billing, quota, region...), for the log.
        self.owner_hint: str | None = owner_hint
        #: How many HTTP attempts the failed call made (set by the client).
        self.attempts: int = 0


# Reasons the API gives when it answers without an image. Prompt-level reasons
# (`promptFeedback.blockReason`) mean nothing was generated; finish reasons
# (`candidates[0].finishReason`) say why generation stopped.
PROMPT_BLOCK_REASONS: Final = frozenset(
    {"SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"}
)
FINISH_REASONS: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "IMAGE_PROHIBITED_CONTENT",
        "NO_IMAGE",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "MAX_TOKENS",
    }
)

_BLOCK_MESSAGES: Final[Mapping[tuple[str, str], str]] = {
    ("prompt", "SAFETY"): "Your prompt was blocked by the safety filters before any image was "
    "made. Try rewording it.",
    ("prompt", "IMAGE_SAFETY"): "Your prompt or image was refused as unsafe for image "
    "generation, so nothing was made. Try a different prompt.",
    ("prompt", "PROHIBITED_CONTENT"): "Your prompt asks for content the image service "
    "prohibits. Try something else.",
    ("prompt", "BLOCKLIST"): "Your prompt contains a term the image service doesn't accept. "
    "Remove it and try again.",
    ("prompt", "OTHER"): "The image service refused this prompt without saying why. Try "
    "rewording it.",
    ("output", "NO_IMAGE"): "The model answered without an image. Ask for a picture more "
    "clearly and try again.",
    ("output", "IMAGE_SAFETY"): "The generated image was blocked by the safety filters. Try a "
    "different prompt.",
    ("output", "IMAGE_PROHIBITED_CONTENT"): "The generated image was withheld as prohibited "
    "content. Try a different prompt.",
    ("output", "IMAGE_RECITATION"): "The generated image was too close to an existing image, "
    "so it was withheld. Try a more original prompt.",
    ("output", "IMAGE_OTHER"): "The model stopped without an image for an unspecified reason. "
    "Please try again.",
}


class ContentBlocked(NanobananaError):
    """The API answered 200 but gave no image.

    `stage` is "prompt" (`promptFeedback.blockReason`: nothing was generated) or "output"
    (the candidate's `finishReason`, or NO_IMAGE when the model simply sent no image);
    `reason` is the API's code; `finish_message` is the API's own explanation (for logs);
    `text` is what the model wrote instead (for logs; never shown unfiltered).
    """

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        stage: str = "output",
        text: str | None = None,
        finish_message: str | None = None,
    ) -> None:
        self.reason: str = reason
        self.stage: str = stage
        self.text: str | None = text
        self.finish_message: str | None = finish_message
        detail = f"{stage} blocked: {reason}" if stage == "prompt" else f"no image: {reason}"
        if finish_message:
            detail += f" ({finish_message[:300]})"
        super().__init__(
            message or detail,
            user_message=_BLOCK_MESSAGES.get(
                (stage, reason),
                "The image service didn't make an image for this request. Try rewording it.",
            ),
            retryable=False,
        )


class RateLimited(NanobananaError):
    """HTTP 429 after every attempt; `retry_after` is the server's delay in seconds, if given."""

    default_user_message: ClassVar[str] = (
        "The image service is busy right now. Please try again in a minute."
    )
    default_retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        user_message: str | None = None,
        status: int | None = 429,
        retryable: bool | None = None,
        owner_hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            user_message=user_message,
            status=status,
            retryable=retryable,
            owner_hint=owner_hint,
        )
        self.retry_after: float | None = retry_after


class QuotaExhausted(RateLimited):
    """HTTP 429 that waiting a minute won't fix: the key has no quota for the model (a quota
    of 0, typically no billing) or a per-day quota is used up. Never retried.

    `kind` is "none" (limit 0) or "daily"; `quota_id` names Google's quota.
    """

    default_user_message: ClassVar[str] = (
        "The bot has used up its image quota with Google. Please tell the bot's owner."
    )
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        quota_id: str | None,
        retry_after: float | None = None,
        owner_hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            retry_after=retry_after,
            retryable=False,
            owner_hint=owner_hint,
            user_message=(
                "The bot's daily image quota with Google is used up. Please try again tomorrow."
                if kind == "daily"
                else None
            ),
        )
        self.kind: str = kind
        self.quota_id: str | None = quota_id


class ProviderUnavailable(NanobananaError):
    """5xx answers, timeouts or connection errors that outlasted the retries (or the deadline).

    `maybe_billed`: a request was sent and no answer came back (a timeout, a dropped
    connection): Google may have made, and billed, the image we never got."""

    default_user_message: ClassVar[str] = (
        "The image service is unavailable right now. Please try again later."
    )
    default_retryable: ClassVar[bool] = True
    maybe_billed: bool = False


class InvalidRequest(NanobananaError):
    """HTTP 400/404 or a request the client refused to send.

    `code` names the problem for the bot's messages: "invalid", "too_large" (the request is
    over the inline limit), "location" (the API is not offered where the bot runs),
    "billing" (the free tier isn't offered there: billing needed), "model" (unknown model),
    "ratio", "size", "too_many_images", "prompt", "image".
    """

    default_user_message: ClassVar[str] = "The image service couldn't accept this request."

    def __init__(
        self,
        message: str = "",
        *,
        code: str = "invalid",
        user_message: str | None = None,
        status: int | None = None,
        owner_hint: str | None = None,
    ) -> None:
        super().__init__(message, user_message=user_message, status=status, owner_hint=owner_hint)
        self.code: str = code


class ModelNotFound(InvalidRequest):
    """HTTP 404 NOT_FOUND for a model: Google retired it (or never had it under that id).

    `model` is the id that was asked for. The bot retires it for the whole deployment and
    moves to its successor where it may (see bot.services.models)."""

    def __init__(self, message: str = "", *, model: str | None = None, status: int = 404) -> None:
        super().__init__(
            message,
            code="model",
            user_message="The image model this bot is set up with is no longer offered by "
            "Google. The bot's owner has been told.",
            status=status,
            owner_hint=f"the Gemini API doesn't know the model {model}: Google retired it, or "
            "the id is wrong; run `python -m bot check` to see the models your key can use",
        )
        self.model: str | None = model


class AuthenticationFailed(NanobananaError):
    """HTTP 401/403 or an invalid/missing API key."""

    default_user_message: ClassVar[str] = (
        "Image generation isn't available: the bot's API key was rejected. "
        "Please tell the bot's owner."
    )


class MalformedResponse(NanobananaError):
    """The API answered 200 with something unreadable: bad JSON, bad base64, a broken image."""

    default_user_message: ClassVar[str] = (
        "The image service sent an answer the bot couldn't read. Please try again."
    )
    default_retryable: ClassVar[bool] = True
