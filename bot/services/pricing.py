"""What an image costs the host in US dollars: Google's list prices per model and size, the
estimate a budget reserves before a call, and the cost of a finished call from the API's own
`usageMetadata`.

Amounts are integer micro-dollars (1 USD = 1,000,000 µUSD) everywhere below the display, so
sums in the database are exact and portable (no floating point in SQL).

The defaults are the list prices in the lineup (bot/nanobanana/lineup.toml: each model's
`[model.price]`, with its source and the date it was checked; Google's pricing page rows for
the 2026 models were not in the stored docs, so several come from third parties and are marked
so there). An id the lineup doesn't know is priced like its family's model.

Owners override per-image prices with `IMAGE_PRICES_USD` and token rates with
`TOKEN_PRICES_USD` (batch or negotiated prices, a proxy, a new model). A price set for a model
that something replaced (a retired id, an `auto` choice that moved on) applies to its
replacement unless set for it (`aliases`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from bot.nanobanana.profiles import LINEUP, NANO_BANANA, Lineup

#: When the list prices below were read (the lineup's date; shown as "December 2026",
#: "diciembre de 2026").
PRICES_AS_OF = LINEUP.checked or date(2026, 12, 7)
MICROS = 1_000_000

# Before a call, a budget reserves the image plus an allowance for what the answer's tokens
# may add: the prompt (about four characters a token), each input image (Google counts 258 to
# 560 tokens), and a thinking model's thoughts (Nano Banana Pro and 2 think a few hundred).
_CHARS_PER_TOKEN = 4
_TOKENS_PER_INPUT_IMAGE = 560
_THINKING_ALLOWANCE = 500
# A grounded answer runs a few searches (Gemini 3 bills each); the bill counts the real ones.
_SEARCH_ALLOWANCE = 3


@dataclass(frozen=True)
class ModelPrice:
    """One model's list prices: USD per million tokens, and tokens per output image by size
    (the key None: a model without sizes)."""

    input_per_million: Decimal
    output_per_million: Decimal
    image_per_million: Decimal
    image_tokens: Mapping[str | None, int]
    thinking: bool = False
    #: USD per 1,000 Google Search queries of a grounded answer (None: free as far as known).
    search_per_thousand: Decimal | None = None

    def tokens_for(self, size: str | None) -> int:
        """Tokens one image of `size` counts (the model's default size when unknown)."""
        if size in self.image_tokens:
            return self.image_tokens[size]
        if "1K" in self.image_tokens:
            return self.image_tokens["1K"]
        return max(self.image_tokens.values())


def prices_of(lineup: Lineup) -> dict[str, ModelPrice]:
    """Each model's list prices from the lineup (models without a price are left out)."""
    table: dict[str, ModelPrice] = {}
    for model, profile in lineup.profiles.items():
        facts = profile.price
        if facts is None:
            continue
        table[model] = ModelPrice(
            facts.input_per_million,
            facts.output_per_million,
            facts.image_per_million,
            dict(facts.image_tokens),
            thinking=profile.thinking,
            search_per_thousand=facts.search_per_thousand,
        )
    return table


DEFAULT_PRICES: Mapping[str, ModelPrice] = prices_of(LINEUP)


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
    #: For a model used in place of others, those others: their overrides apply to it.
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: Where an id without a price of its own finds its family's.
    lineup: Lineup = LINEUP

    def _names(self, model: str) -> tuple[str, ...]:
        return (model, *self.aliases.get(model, ()))

    def model(self, model: str) -> ModelPrice:
        """The model's prices; an id the table doesn't price is priced like its family's
        model (set its price with IMAGE_PRICES_USD)."""
        base = self.defaults.get(model)
        if base is None:
            facts = self.lineup.profile(model).price
            base = (
                ModelPrice(facts.input_per_million, facts.output_per_million,
                           facts.image_per_million, dict(facts.image_tokens),
                           thinking=self.lineup.profile(model).thinking,
                           search_per_thousand=facts.search_per_thousand)
                if facts is not None
                else self.defaults.get(NANO_BANANA) or next(iter(self.defaults.values()))
            )  # fmt: skip
        names = self._names(model)
        return ModelPrice(
            next((self.token_prices[f"{n}:input"] for n in names
                  if f"{n}:input" in self.token_prices), base.input_per_million),
            next((self.token_prices[f"{n}:output"] for n in names
                  if f"{n}:output" in self.token_prices), base.output_per_million),
            base.image_per_million,
            base.image_tokens,
            base.thinking,
            base.search_per_thousand,
        )  # fmt: skip

    def image_micros(self, model: str, size: str | None) -> int:
        """One output image of `model` at `size`: the override, else tokens x rate."""
        for name in self._names(model):
            for key in (f"{name}:{size}" if size else None, name):
                if key is not None and key in self.image_prices:
                    return micros(self.image_prices[key])
        price = self.model(model)
        return micros(price.image_per_million * price.tokens_for(size) / MICROS)

    def sizes(self, model: str) -> list[tuple[str | None, int]]:
        """(size, µUSD per image) for each size the table knows for `model`."""
        return [(size, self.image_micros(model, size)) for size in self.model(model).image_tokens]

    def search_micros(self, model: str, queries: int) -> int:
        """What `queries` Google Search queries of a grounded answer cost."""
        per_thousand = self.model(model).search_per_thousand
        if per_thousand is None or queries <= 0:
            return 0
        return micros(per_thousand * queries / 1000)

    def estimate(
        self, model: str, size: str | None, *, prompt_chars: int = 0, input_images: int = 0,
        grounded: bool = False,
    ) -> int:  # fmt: skip
        """What a budget reserves before the call: the image, plus an allowance for the
        prompt, input images, a thinking model's thoughts and a grounded answer's
        searches."""
        price = self.model(model)
        tokens_in = prompt_chars // _CHARS_PER_TOKEN + 1 + _TOKENS_PER_INPUT_IMAGE * input_images
        extra = price.input_per_million * tokens_in
        if price.thinking:
            extra += price.output_per_million * _THINKING_ALLOWANCE
        searches = self.search_micros(model, _SEARCH_ALLOWANCE) if grounded else 0
        return self.image_micros(model, size) + micros(extra / MICROS) + searches

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
