"""`__PLUGIN_NAME__`: a wc-host counting rule (see README.md).

As created: exactly Python's `text.split(" ")` over the `text` column. Split
on the single ASCII space only, so consecutive spaces yield empty strings,
and newlines, tabs and punctuation stay inside tokens; an empty field yields
one empty string. No parameters.
"""

from wc_plugin import Counter, Param  # noqa: F401 (Param: for `params` below)


class Rule(Counter):
    name = "__PLUGIN_NAME__"
    version = "0.1.0"
    description = 'Python\'s text.split(" ") over the text column'
    # CSV header names; row[i] follows this order.
    columns = ["text"]
    # Every --plugin-arg accepted, e.g.
    #   params = [Param("min_len", default="1", help="shortest word counted, in characters")]
    # then in __init__(self, params): self.min_len = params.int("min_len", minimum=1)
    params = []

    def count_row(self, row, counts):
        # update() counts a whole list in C, faster than a loop of add().
        counts.update(row[0].split(" "))
