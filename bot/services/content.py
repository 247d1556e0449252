"""A server's blocklist: words and patterns kept out of prompts and edit instructions.

Text is compared in a normal form, so that case, accents and look-alike letters don't get a
word past the list, all from Unicode's own data rather than a hand list: NFKC (full-width and
styled letters become plain ones), case folding, diacritics stripped, every
Default_Ignorable_Code_Point dropped (zero-width characters, soft hyphens, variation selectors,
Hangul fillers U+115F, U+1160, U+3164, U+FFA0, tag characters...: the property comes from the
Unicode Character Database as the `regex` package ships it, kept at the latest Unicode
version), small capitals folded to their letter (`ʙᴀɴᴀɴᴀ`: the letters the UCD names "LATIN
LETTER SMALL CAPITAL X"; UTS #39 maps them to other scripts' look-alikes, not to Latin), and
every remaining letter that Unicode's confusables table (UTS #39, confusables.txt as the
`confusable-homoglyphs` package ships it) says looks like a Latin letter or digit folded to it
(Cyrillic "а", Greek "ο"...). Words match whole
words (a phrase matches its words in order) and also when split across whole words ("b a d",
"ba d", "banana bomb" as "b a n a n a bomb"); patterns are RE2 regular expressions
(case-insensitive) run on the normal form.

RE2 matches in linear time, so no pattern can be catastrophic to run; a pattern that does not
compile, or whose program would be too large, is refused when it is added.
"""

from __future__ import annotations

import functools
import logging
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import re2
import regex
from confusable_homoglyphs import confusables

from bot.services.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_ENTRY_CHARS = 200
MAX_ENTRIES = 200
# RE2's memory budget for one pattern: plenty for word lists, refuses exponential programs.
PATTERN_MAX_MEM = 1 << 20
_WORDS = re.compile(r"[^\w]+|_+")
# Unicode's Default_Ignorable_Code_Point property: characters that show nothing by themselves
# and that a renderer may skip, so they can hide inside a word.
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
# How the UCD names the small capital forms of a Latin letter (U+0299 LATIN LETTER SMALL
# CAPITAL B, U+A7AE LATIN CAPITAL LETTER SMALL CAPITAL I); their modifier forms (U+1DA6) are
# NFKC-equivalent to these.
_SMALL_CAPITAL_NAMES = ("LATIN LETTER SMALL CAPITAL {}", "LATIN CAPITAL LETTER SMALL CAPITAL {}")


@functools.cache
def _skeletons() -> dict[str, str]:
    """Non-ASCII characters that look like an ASCII letter or digit, mapped to it: the small
    capitals of each letter (by their UCD names), then Unicode's confusables."""
    table: dict[str, str] = {}
    for letter in string.ascii_uppercase:
        for name in _SMALL_CAPITAL_NAMES:
            try:
                table[unicodedata.lookup(name.format(letter))] = letter.lower()
            except KeyError:
                continue  # no such character (not every letter has each form)
    for char, entries in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii() or char in table:
            continue
        for entry in entries:
            glyph = entry.get("c", "")
            if len(glyph) == 1 and glyph.isascii() and glyph.isalnum():
                table[char] = glyph.lower()
                break
    return table


def normalise(text: str) -> str:
    """The form the blocklist is checked on: lower-case ASCII-folded words separated by
    single spaces (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = _IGNORABLE.sub("", unicodedata.normalize("NFD", text))
    skeletons = _skeletons()
    folded = "".join(
        skeletons.get(char, char)
        for char in decomposed
        if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    )
    folded = unicodedata.normalize("NFKC", folded).casefold()
    return " ".join(word for word in _WORDS.split(folded) if word)


def _joined_match(words: list[str], squashed: str) -> bool:
    """Whether some run of whole words, joined without spaces, spells `squashed` ("b a d",
    "ba d" -> "bad"); runs start and end on word boundaries, so "class" never holds "ass"."""
    for start in range(len(words)):
        joined = ""
        for word in words[start:]:
            joined += word
            if len(joined) >= len(squashed):
                if joined == squashed:
                    return True
                break
    return False


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp:
    """An RE2 program for `pattern` (case-insensitive); re2.error if it does not compile or
    would be too large."""
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False
    return re2.compile(pattern, options)


def check_word(entry: str) -> str:
    """A blocked word or phrase in normal form, or InvalidInput."""
    if len(entry) > MAX_ENTRY_CHARS:
        raise InvalidInput("blocklist.too_long", limit=MAX_ENTRY_CHARS)
    word = normalise(entry)
    if not word:
        raise InvalidInput("blocklist.empty_word")
    return word


def check_pattern(entry: str) -> str:
    """A pattern that compiles within RE2's limits and doesn't match everything."""
    pattern = entry.strip()
    if not pattern:
        raise InvalidInput("blocklist.empty_word")
    if len(pattern) > MAX_ENTRY_CHARS:
        raise InvalidInput("blocklist.too_long", limit=MAX_ENTRY_CHARS)
    try:
        program = compile_pattern(pattern)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        if "too large" in str(detail) or "repetition" in str(detail):
            raise InvalidInput("blocklist.pattern_too_costly") from None
        raise InvalidInput("blocklist.bad_pattern", error=str(detail)[:120]) from None
    # A pattern matching the empty text would block every prompt.
    if program.search("") is not None:
        raise InvalidInput("blocklist.pattern_matches_everything")
    return pattern


@dataclass(frozen=True)
class ContentPolicy:
    """A server's blocked words (normal form) and patterns."""

    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, words: Iterable[str], patterns: Iterable[str]) -> ContentPolicy:
        return cls(tuple(words), tuple(patterns))

    def __bool__(self) -> bool:
        return bool(self.words or self.patterns)

    def blocked_by(self, text: str) -> str | None:
        """The entry `text` falls foul of, or None (for logs; members never see it)."""
        words = normalise(text).split()
        plain = f" {' '.join(words)} "
        for word in self.words:
            if f" {word} " in plain or _joined_match(words, word.replace(" ", "")):
                return word
        flat = plain.strip()
        for pattern in self.patterns:
            try:
                if compile_pattern(pattern).search(flat) is not None:
                    return pattern
            except re2.error:
                log.warning("stored blocklist pattern no longer compiles: %r", pattern)
        return None

    def check(self, text: str) -> None:
        """Refuse `text` with a neutral message that never repeats the blocked entry."""
        if self and self.blocked_by(text) is not None:
            raise InvalidInput("blocklist.prompt_blocked")
