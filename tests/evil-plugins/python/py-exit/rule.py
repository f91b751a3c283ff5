"""`py-exit`: text.split(" "), but exits the interpreter on a row containing
`exit`: `sys.exit(3)` (raises SystemExit) or `os._exit(3)` (WASI
proc_exit: no Python exception at all), per the `how` parameter."""

import os
import sys

from wc_plugin import Counter, Param, PluginError


class Rule(Counter):
    name = "py-exit"
    description = "evil: exits the interpreter on a row containing `exit`"
    params = [Param("how", default="sys", help="sys: sys.exit(3); os: os._exit(3)")]

    def __init__(self, params):
        params.check_known()
        self.how = params.get("how")
        if self.how not in ("sys", "os"):
            raise PluginError(f"parameter `how` must be sys or os, got `{self.how}`")

    def count_row(self, row, counts):
        text = row[0]
        if "exit" in text:
            if self.how == "os":
                os._exit(3)
            sys.exit(3)
        counts.update(text.split(" "))
