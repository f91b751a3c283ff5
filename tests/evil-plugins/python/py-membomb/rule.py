"""`py-membomb`: text.split(" "), but on a row containing `bomb` grows a
list without bound (64 KiB strings, each distinct so nothing is shared),
until the interpreter or the host stops it."""

from wc_plugin import Counter, Param


class Rule(Counter):
    name = "py-membomb"
    description = "evil: count_row grows a list without bound on a row containing `bomb`"
    params = [Param("chunk", default="65536", help="bytes added to the list per step")]

    def __init__(self, params):
        params.check_known()
        self.chunk = params.int("chunk", minimum=1)

    def count_row(self, row, counts):
        text = row[0]
        if "bomb" in text:
            hog = []
            while True:
                hog.append(str(len(hog)) * (self.chunk // 8 + 1))
        counts.update(text.split(" "))
