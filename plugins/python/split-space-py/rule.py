"""`split-space-py`: exactly Python's `text.split(" ")` over the `text` column.

The Python twin of the Rust `split-space` plugin (same golden cases): split
on the single ASCII space only, so consecutive spaces yield empty strings,
and newlines, tabs and punctuation stay inside tokens; an empty field
yields one empty string. No parameters. Also the template for a new plugin.
"""

from wc_plugin import Counter


class SplitSpace(Counter):
    name = "split-space-py"
    version = "0.1.0"
    description = 'Python\'s text.split(" ") over the text column (the lab\'s reference rule), in Python'
    columns = ["text"]

    def count_row(self, row, counts):
        # update() counts a whole list in C, faster than a loop of add().
        counts.update(row[0].split(" "))
