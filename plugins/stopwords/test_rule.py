"""Unit tests of the stopwords rule, run natively (plugins/python/build.sh
runs them before building, with the SDK on PYTHONPATH), or by hand:
    PYTHONPATH=plugins/python/sdk $VENV/bin/python -m pytest plugins/stopwords/test_rule.py
The golden cases (cases.json) check the built component."""

import pathlib
import re
import sys
import unicodedata

import pytest

# The SDK of this checkout, when PYTHONPATH does not name one.
sys.path.append(str(pathlib.Path(__file__).resolve().parents[1] / "python" / "sdk"))

from wc_plugin import Counts, Params, PluginError, Task  # noqa: E402
from rule import DEFAULT_STOP, StopWords, _WORD, parse_stop, words  # noqa: E402


def count(texts, **params):
    task = Task(StopWords, list(params.items()))
    values = "".join(texts)
    ends, n = [], 0
    for t in texts:
        n += len(t.encode())
        ends.append(n)
    task.feed(values, ends)
    return dict(task.finish())


def reference_words(text):
    """The documented rule, spelled out with str.isalnum one character at a time."""
    out, word = [], []
    for ch in text.lower():
        if ch.isalnum():
            word.append(ch)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def test_word_regex_is_exactly_isalnum_for_every_code_point():
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        assert bool(_WORD.fullmatch(ch)) == ch.isalnum(), f"U+{cp:04X} {unicodedata.name(ch, '?')}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The cat, the HAT!",
        "Don't e-mail snake_case @user #tag https://t.co/x",
        "Café naïve São Paulo MÜLLER straße İstanbul",
        "日本語のテキスト、テスト ok",
        "great😡service 👍 ❤️ x² ٣ Ⅻ ½",
        "tabs\tand\nnewlines\r\n  double  spaces",
    ],
)
def test_words_match_the_isalnum_reference(text):
    want = [w for w in reference_words(text) if w not in DEFAULT_STOP]
    assert words(text, DEFAULT_STOP) == want


def test_lowercasing_comes_before_splitting():
    # "İ".lower() is "i" + U+0307 COMBINING DOT ABOVE, which is not alphanumeric.
    assert words("İstanbul", frozenset()) == ["i", "stanbul"]


def test_default_stop_words_and_their_contraction_pieces():
    assert count(["The cat sat on the mat, didn't it?"]) == {"cat": 1, "sat": 1, "mat": 1}
    assert all(_WORD.fullmatch(w) and w == w.lower() for w in DEFAULT_STOP)


def test_stop_replaces_the_default_list():
    assert count(["The cat in the hat"], stop=" Cat ,HAT,,") == {"the": 2, "in": 1}
    assert count(["the end"], stop="") == {"the": 1, "end": 1}


def test_min_len_counts_characters():
    assert count(["café été naïf a"], min_len="4") == {"café": 1, "naïf": 1}
    assert count(["a b"], min_len="1", stop="") == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"min_len": "x"}, "parameter `min_len` must be an integer, got `x`"),
        ({"min_len": "0"}, "parameter `min_len` must be at least 1, got 0"),
        ({"stop": "ok,don't"}, "stop word `don't` can never match"),
        ({"lang": "en"}, "unknown parameter `lang` (known: stop, min_len)"),
    ],
)
def test_bad_parameters_are_errors(params, message):
    with pytest.raises(PluginError, match=re.escape(message)):
        Task(StopWords, list(params.items()))


def test_last_value_of_a_repeated_parameter_wins():
    rule = StopWords(Params([("min_len", "9"), ("min_len", "3")], StopWords.params))
    assert rule.min_len == 3


def test_state_does_not_cross_tasks():
    assert count(["cat dog"]) == {"cat": 1, "dog": 1}
    assert count(["cat"]) == {"cat": 1}


def test_count_row_adds_to_counts():
    counts = Counts()
    rule = StopWords(Params([], StopWords.params))
    rule.count_row(["Cat cat the"], counts)
    rule.count_row(["dog"], counts)
    assert counts == {"cat": 2, "dog": 1}


def test_declared_params():
    info = StopWords.info()
    assert [(p.name, p.default) for p in info.params] == [("stop", None), ("min_len", "1")]
    assert all(p.help for p in info.params)
    assert StopWords(Params([], StopWords.params)).min_len == 1


def test_parse_stop_lowercases_and_strips():
    assert parse_stop(" A, b ,C") == {"a", "b", "c"}
