"""`py-raise`: text.split(" "), but count_row raises ValueError on a row
containing `boom`, and KeyError on one containing `key`."""

from wc_plugin import Counter

MESSAGE = "py-raise blows up on purpose"


class Rule(Counter):
    name = "py-raise"
    description = "evil: count_row raises on a row containing `boom` (ValueError) or `key` (KeyError)"

    def count_row(self, row, counts):
        text = row[0]
        if "boom" in text:
            raise ValueError(f"{MESSAGE}: {text}")
        if "key" in text:
            {}["missing"]
        counts.update(text.split(" "))
