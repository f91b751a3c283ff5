"""`py-loop`: text.split(" "), but loops forever on a row containing `loop`."""

from wc_plugin import Counter


class Rule(Counter):
    name = "py-loop"
    description = "evil: count_row never returns on a row containing `loop`"

    def count_row(self, row, counts):
        text = row[0]
        if "loop" in text:
            n = 0
            while True:
                n += 1
        counts.update(text.split(" "))
