"""The blocklist's normal form and matching, and the refusal of bad entries."""

from __future__ import annotations

import pytest

from bot.services.content import ContentPolicy, check_pattern, check_word, normalise
from bot.services.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Ｈéllo,  WORLD!", "hello world"),  # full width, accents, case, punctuation
        ("ѕрооf", "spoof"),  # Cyrillic look-alikes
        ("𝐛𝐨𝐥𝐝 ｔｅｘｔ", "bold text"),  # mathematical letters
        ("Straße", "strasse"),  # case folding
        ("in\u200bvisible\u2060", "invisible"),  # zero-width characters
        ("naïve café", "naive cafe"),
        # Default_Ignorable_Code_Point inside a word: Hangul fillers, half-width filler, soft
        # hyphen, variation selector, a tag character, combining grapheme joiner.
        ("ban\u3164ana", "banana"),
        ("ban\uffa0ana", "banana"),
        ("ban\u115fa\u1160na", "banana"),
        ("ba\u00adna\ufe0fna\U000e0041\u034f", "banana"),
        ("ʙᴀɴᴀɴᴀ ꜱᴘʟɪᴛ", "banana split"),  # small capitals
        ("ᴮᴬᴺᴬᴺᴬ", "banana"),  # modifier capitals (NFKC)
    ],
)
def test_normal_form(text: str, normal: str) -> None:
    assert normalise(text) == normal


def test_words_match_whole_words_and_split_spellings_only() -> None:
    policy = ContentPolicy.of([check_word("ass"), check_word("Bad Word")], [])
    assert policy.blocked_by("you ass") == "ass"
    assert policy.blocked_by("a s s") == "ass"
    assert policy.blocked_by("BÁD  wörd") == "bad word"
    assert policy.blocked_by("b a d w o r d") == "bad word"
    for fine in ("class", "bass guitar", "assume", "bad words are words"):
        assert policy.blocked_by(fine) is None, fine


def test_patterns_run_on_the_normal_form() -> None:
    policy = ContentPolicy.of([], [check_pattern(r"\bsp[a4]+m\b")])
    assert policy.blocked_by("SPAAAM!") is not None
    assert policy.blocked_by("Ѕраm") is not None  # Cyrillic Ѕ р а
    assert policy.blocked_by("spamming") is None
    with pytest.raises(InvalidInput) as error:
        policy.check("spam")
    assert error.value.key == "blocklist.prompt_blocked" and not error.value.params


def test_a_catastrophic_backtracking_pattern_is_linear_in_re2() -> None:
    policy = ContentPolicy.of([], [check_pattern("(a+)+$")])
    # Python's re would take ages on this; RE2 answers at once.
    assert policy.blocked_by("a" * 5000 + "b") is None


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (r"(x)\1", "blocklist.bad_pattern"),
        ("(?<=a)b", "blocklist.bad_pattern"),
        ("(", "blocklist.bad_pattern"),
        ("((x{100}){100}){100}", "blocklist.pattern_too_costly"),
        ("|", "blocklist.pattern_matches_everything"),
        ("   ", "blocklist.empty_word"),
        ("x" * 201, "blocklist.too_long"),
    ],
)
def test_bad_patterns(entry: str, key: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_pattern(entry)
    assert error.value.key == key


def test_bad_words() -> None:
    with pytest.raises(InvalidInput):
        check_word("!!! ???")
    assert check_word("  Ünicode  WORD ") == "unicode word"
