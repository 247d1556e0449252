"""Image jobs: `/generate`, Reroll, Edit and the API's generate, on the job engine.

- `values`: what to make (GenerationRequest) and what was made (Result, ExtraImage);
- `requests`: prompts as they will be sent; Reroll and Edit requests from stored images;
- `kind`: ImageJobs, the image kind of paid job (price, model call, delivery and storing);
- `reasons`: why a job failed, as a message key;
- `service`: GenerationService, the kind on an engine, as adapters and `orders` use it.
"""

from bot.services.generation.kind import ImageJobs, pending_image
from bot.services.generation.reasons import failure_reason
from bot.services.generation.requests import clean_prompt, source_prompts
from bot.services.generation.service import GenerationService
from bot.services.generation.values import (
    ExtraImage,
    GenerationRequest,
    ImageGenerator,
    ImageJobView,
    Result,
    SourceImage,
)
from bot.services.jobs import Admission, Failure, Job, JobListener
from bot.services.resilience import is_transient

__all__ = [
    "Admission",
    "ExtraImage",
    "Failure",
    "GenerationRequest",
    "GenerationService",
    "ImageGenerator",
    "ImageJobView",
    "ImageJobs",
    "Job",
    "JobListener",
    "Result",
    "SourceImage",
    "clean_prompt",
    "failure_reason",
    "is_transient",
    "pending_image",
    "source_prompts",
]
