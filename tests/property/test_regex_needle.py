"""The text a rule requires (``_required_text``, checked before a rule's ``search``) is in
every text the rule's pattern matches: skipping a search when it is absent never changes
which rule matches a record."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradelog.parsing.regex_rules import _required_text

# pattern pieces: literals (some with regex syntax), and constructs whose literals are
# not required (alternatives, repeats, lookarounds, case-insensitive parts)
PIECES = [
    "ab", "b", "c", "] fill ", r"\[", r"\]", " ", "=", "x=", r"\.", "a.c", r"\d+", r"\S+",
    "(?P<g{n}>ab)", "(?:b c)", "(?:ab|ac)", "(?:x)?", "(?:ab)*", "(?:ab)+", "a{{2}}",
    "(?=ab)", "(?!ab)", "(?<=a)", "(?i:ab)", "(?-i:b)", "[ab]", "[^a]", r"\b", "^", "$",
    "(?P<h{n}>a|b)c", "(?>ab)", "ab*+", r"\x61", r"\u0062", "(ab)", r"(a)\1",
]  # fmt: skip
TEXT_PIECES = ["a", "b", "c", "ab", "ac", "AB", "] fill ", "[", "]", " ", "=", "x", ".", "1"]


@st.composite
def pattern(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8))
    body = "".join(p.format(n=i) for i, p in enumerate(parts))
    prefix = draw(st.sampled_from(["", "", "(?i)", "(?x)", "(?s)", "(?m)"]))
    return prefix + body


texts = st.lists(st.sampled_from(TEXT_PIECES), max_size=12).map("".join)


@settings(max_examples=800, deadline=None)
@given(pattern=pattern(), text=texts)
@example(pattern="(?i)] fill ", text="] FILL ")
@example(pattern="(?i:ab)c", text="ABc")
@example(pattern="a(?:b|c)", text="ac")
@example(pattern="(?x) a b ", text="ab")
def test_a_match_contains_the_required_text(pattern: str, text: str) -> None:
    try:
        regex = re.compile(pattern)
    except re.error:
        return
    needle = _required_text(regex)
    if needle is not None and regex.search(text) is not None:
        assert needle in text, (pattern, text, needle)


def test_required_text_of_typical_rules() -> None:
    def needle(pattern: str) -> str | None:
        return _required_text(re.compile(pattern))

    assert needle(r"^(?P<ts>\S+ \S+) INFO \[(?P<s>[^\]]+)\] fill (?P<e>\S+) exec=") == "] fill "
    assert needle(r"^\[[^\]]+\] HB\b") == "] HB"
    assert needle(r"^(?P<kind>order_ack|order_cancelled) ") == "order_"
    assert needle(r"(?i)^\d+ FILL") is None  # case-insensitive: any spelling matches
    assert needle(r"^(?P<a>\d+) (?P<b>\S+)") is None  # nothing longer than 2 characters
    assert needle(r"(?:abc)?xy") is None  # an optional group is not required
