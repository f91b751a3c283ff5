"""`stopwords`: lowercase words of the `text` column, stop words removed.

Words: the text is lowercased with `str.lower()`, then split into maximal
runs of characters for which `str.isalnum()` is true (Unicode letters and
digits of any script; `_`, apostrophes, hyphens, punctuation, emoji and
whitespace all separate words). So "Don't" gives `don` and `t` (both default
stop words), "e-mail" gives `e` and `mail`, "日本語のテキスト" is one word,
and accents are kept ("café" != "cafe"). Lowercasing comes first, so a
letter whose lowercase form adds a combining mark splits there ("İ" lowers
to "i" + U+0307, which is not alphanumeric).

Parameters:
  stop     comma-separated stop words replacing the default English list
           (entries are stripped and lowercased; `stop=` removes none)
  min_len  shortest word counted, in characters (default 1)
"""

import re

from wc_plugin import Counter, Param, PluginError

# `\w` on str is exactly str.isalnum() plus "_" (Python's re docs), so this
# is the runs of isalnum characters, found in C rather than a Python loop.
_WORD = re.compile(r"[^\W_]+")

# Common English function words, plus the pieces this tokenizer makes of
# contractions ("don't" -> don, t; "we'll" -> we, ll).
DEFAULT_STOP = frozenset("""
a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself
yourselves
s t d ll m re ve don didn doesn isn aren wasn weren hasn haven hadn won wouldn
shouldn couldn can cannot ain
""".split())


def words(text, stop, min_len=1):
    """The words of `text` that count: lowercased, not in `stop`, at least
    `min_len` characters long."""
    found = _WORD.findall(text.lower())
    if min_len > 1:
        return [w for w in found if w not in stop and len(w) >= min_len]
    return [w for w in found if w not in stop]


def parse_stop(value):
    """The `stop` parameter: comma-separated, stripped, lowercased."""
    stop = frozenset(w.strip().lower() for w in value.split(",")) - {""}
    for w in sorted(stop):
        if not _WORD.fullmatch(w):
            raise PluginError(f"parameter `stop`: stop word `{w}` can never match (words are runs of letters and digits)")
    return stop


class StopWords(Counter):
    name = "stopwords"
    version = "0.2.0"
    description = "lowercase words of text (runs of str.isalnum characters) without stop words"
    columns = ["text"]
    params = [
        # No default text: its absence means the built-in English list.
        Param("stop", help="comma-separated stop words replacing the built-in English list (`stop=` removes none)"),
        Param("min_len", default="1", help="shortest word counted, in characters"),
    ]

    def __init__(self, params):
        params.check_known()
        value = params.get("stop")
        self.stop = DEFAULT_STOP if value is None else parse_stop(value)
        self.min_len = params.int("min_len", minimum=1)

    def count_row(self, row, counts):
        counts.update(words(row[0], self.stop, self.min_len))
