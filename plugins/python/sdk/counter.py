"""Where componentize-py looks for the exported resource `task-counter` of
interface `counter`: a module named after the interface. Not for plugins."""

from wc_plugin.component import TaskCounter  # noqa: F401
