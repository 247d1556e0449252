"""What an image costs the host in US dollars: Google's list prices per model and size, the
estimate a budget reserves before a call, and the cost of a finished call from the API's own
`usageMetadata`.

Amounts are integer micro-dollars (1 USD = 1,000,000 µUSD) everywhere below the display, so
sums in the database are exact and portable (no floating point in SQL).

The defaults are Google's published list prices for the Gemini Developer API, standard paid
tier, as listed on ai.google.dev/gemini-api/docs/pricing in April 2026 (`PRICES_AS_OF`):

- gemini-2.5-flash-image: input $0.30/1M tokens, text out $2.50/1M, image out $30/1M; an
  image is 1290 tokens = $0.039;
- gemini-3-pro-image-preview: input $2.00/1M, text and thinking out $12/1M, image out
  $120/1M; 1K and 2K images 1120 tokens = $0.134, 4K 2000 tokens = $0.24;
- gemini-3.1-flash-image-preview: input $0.50/1M, text and thinking out $3/1M, image out
  $60/1M; 512 px 747 tokens = $0.045, 1K 1120 = $0.067, 2K 1680 = $0.101, 4K 2520 = $0.151.

Owners override per-image prices with `IMAGE_PRICES_USD` and token rates with
`TOKEN_PRICES_USD` (batch or negotiated prices, a proxy, a new model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from bot.nanobanana.profiles import NANO_BANANA, NANO_BANANA_2, NANO_BANANA_PRO

#: The month the list prices below were read (shown as "April 2026", "abril de 2026").
PRICES_AS_OF = date(2026, 4, 1)
MICROS = 1_000_000

# Before a call, a budget reserves the image plus an allowance for what the answer's tokens
# may add: the prompt (about four characters a token), each input image (Google counts 258 to
# 560 tokens), and a thinking model's thoughts (Nano Banana Pro and 2 think a few hundred).
_CHARS_PER_TOKEN = 4
_TOKENS_PER_INPUT_IMAGE = 560
_THINKING_ALLOWANCE = 500


@dataclass(frozen=True)
class ModelPrice:
    """One model's list prices: USD per million tokens, and tokens per output image by size
    (the key None: a model without sizes)."""

    input_per_million: Decimal
    output_per_million: Decimal
    image_per_million: Decimal
    image_tokens: Mapping[str | None, int]
    thinking: bool = False

    def tokens_for(self, size: str | None) -> int:
        """Tokens one image of `size` counts (the model's default size when unknown)."""
        if size in self.image_tokens:
            return self.image_tokens[size]
        if "1K" in self.image_tokens:
            return self.image_tokens["1K"]
        return max(self.image_tokens.values())


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    NANO_BANANA: ModelPrice(Decimal("0.30"), Decimal("2.50"), Decimal("30"), {None: 1290}),
    NANO_BANANA_PRO: ModelPrice(
        Decimal("2.00"),
        Decimal("12.00"),
        Decimal("120"),
        {"1K": 1120, "2K": 1120, "4K": 2000},
        thinking=True,
    ),
    NANO_BANANA_2: ModelPrice(
        Decimal("0.50"),
        Decimal("3.00"),
        Decimal("60"),
        {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
        thinking=True,
    ),
}


def micros(usd: Decimal | float | int | str) -> int:
    """Dollars as whole micro-dollars (half up)."""
    value = Decimal(str(usd)) * MICROS
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def usd(amount_micros: int) -> Decimal:
    """Micro-dollars as dollars."""
    return Decimal(amount_micros) / MICROS


def format_usd(amount_micros: int) -> str:
    """$0.039, $0.116, $12.50, $1,234.00: tenths of a cent below a dollar, cents above."""
    value = usd(amount_micros)
    if abs(value) < 1 and amount_micros:
        return f"${value:.3f}"
    return f"${value:,.2f}"


@dataclass(frozen=True)
class UsageCounts:
    """Token counts read from an answer's `usageMetadata` (wire keys, details flattened as
    `candidatesTokensDetails.IMAGE` and so on)."""

    prompt: int = 0
    output: int = 0  # candidatesTokenCount: every modality of the answer
    image: int = 0  # of which images
    thoughts: int = 0
    total: int = 0

    @property
    def text(self) -> int:
        return max(0, self.output - self.image)

    @classmethod
    def from_usage(cls, usage: Mapping[str, int]) -> UsageCounts | None:
        """None when the answer carried no usage (e.g. a proxy that strips it)."""
        if not usage or ("candidatesTokenCount" not in usage and "totalTokenCount" not in usage):
            return None
        output = int(usage.get("candidatesTokenCount", 0))
        # Without a breakdown every output token is counted as an image token: the dearer
        # rate, so a budget never under-counts.
        image = int(usage.get("candidatesTokensDetails.IMAGE", output))
        return cls(
            prompt=int(usage.get("promptTokenCount", 0)),
            output=output,
            image=image,
            thoughts=int(usage.get("thoughtsTokenCount", 0)),
            total=int(usage.get("totalTokenCount", 0)),
        )


@dataclass(frozen=True)
class PriceTable:
    """Google's prices, with the host's overrides: `image_prices` per model or `model:size`
    in USD per image, `token_prices` per `model:input` / `model:output` in USD per million."""

    image_prices: Mapping[str, Decimal] = field(default_factory=dict)
    token_prices: Mapping[str, Decimal] = field(default_factory=dict)
    defaults: Mapping[str, ModelPrice] = field(default_factory=lambda: DEFAULT_PRICES)

    def model(self, model: str) -> ModelPrice:
        """The model's prices; an unknown model is priced like Nano Banana (set its price
        with IMAGE_PRICES_USD)."""
        base = self.defaults.get(model) or self.defaults[NANO_BANANA]
        return ModelPrice(
            self.token_prices.get(f"{model}:input", base.input_per_million),
            self.token_prices.get(f"{model}:output", base.output_per_million),
            base.image_per_million,
            base.image_tokens,
            base.thinking,
        )

    def image_micros(self, model: str, size: str | None) -> int:
        """One output image of `model` at `size`: the override, else tokens x rate."""
        for key in (f"{model}:{size}" if size else None, model):
            if key is not None and key in self.image_prices:
                return micros(self.image_prices[key])
        price = self.model(model)
        return micros(price.image_per_million * price.tokens_for(size) / MICROS)

    def sizes(self, model: str) -> list[tuple[str | None, int]]:
        """(size, µUSD per image) for each size the table knows for `model`."""
        return [(size, self.image_micros(model, size)) for size in self.model(model).image_tokens]

    def estimate(
        self, model: str, size: str | None, *, prompt_chars: int = 0, input_images: int = 0
    ) -> int:
        """What a budget reserves before the call: the image, plus an allowance for the
        prompt, input images and a thinking model's thoughts."""
        price = self.model(model)
        tokens_in = prompt_chars // _CHARS_PER_TOKEN + 1 + _TOKENS_PER_INPUT_IMAGE * input_images
        extra = price.input_per_million * tokens_in
        if price.thinking:
            extra += price.output_per_million * _THINKING_ALLOWANCE
        return self.image_micros(model, size) + micros(extra / MICROS)

    def cost(
        self, model: str, size: str | None, counts: UsageCounts | None, *, images: int = 1
    ) -> int:
        """What a finished call cost, from its usage: prompt tokens at the input rate, text
        and thoughts at the output rate, image tokens at the image rate (the per-image
        override scales it). Without usage: the table's price of `images` images."""
        if counts is None:
            return self.image_micros(model, size) * max(1, images)
        price = self.model(model)
        nominal = price.tokens_for(size)
        image = Decimal(self.image_micros(model, size)) * counts.image / nominal
        text = price.output_per_million * (counts.text + counts.thoughts) / MICROS
        prompt = price.input_per_million * counts.prompt / MICROS
        return int(
            (image + micros(text) + micros(prompt)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
