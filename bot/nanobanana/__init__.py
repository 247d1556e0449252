"""Google's Nano Banana image models (the Gemini API's `generateContent`), as a package:

- `profiles`: what each model accepts (ratios, sizes, reference images, limits, output);
- `wire`: the request and answer formats, as pure functions;
- `client`: `NanobananaClient`, the HTTP side (retries, deadlines, image fitting);
- `errors`: the typed errors; `values`: images, turns and answers.

DESIGN section 6 is the contract; `bot.nanobanana.NanobananaClient` and the error classes are
importable from here.
"""

from bot.nanobanana.client import DEFAULT_BASE_URL, DEFAULT_MODEL, MAX_INPUT_SIDE, NanobananaClient
from bot.nanobanana.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    MalformedResponse,
    ModelNotFound,
    NanobananaError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from bot.nanobanana.profiles import (
    BASE_ASPECT_RATIOS,
    PROFILES,
    ModelProfile,
    nearest_ratio,
    profile_for,
)
from bot.nanobanana.values import (
    AnswerPart,
    GeneratedImage,
    Grounding,
    InputImage,
    ModelPart,
    OutputImage,
    TextAnswer,
    Turn,
)

#: The ratios every model accepts; each model's own are in its profile.
SUPPORTED_ASPECT_RATIOS: tuple[str, ...] = BASE_ASPECT_RATIOS

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "MAX_INPUT_SIDE",
    "PROFILES",
    "SUPPORTED_ASPECT_RATIOS",
    "AnswerPart",
    "AuthenticationFailed",
    "ContentBlocked",
    "GeneratedImage",
    "Grounding",
    "InputImage",
    "InvalidRequest",
    "MalformedResponse",
    "ModelNotFound",
    "ModelPart",
    "ModelProfile",
    "NanobananaClient",
    "NanobananaError",
    "OutputImage",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RateLimited",
    "TextAnswer",
    "Turn",
    "nearest_ratio",
    "profile_for",
]
