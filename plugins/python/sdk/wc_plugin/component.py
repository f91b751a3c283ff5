"""The WIT exports of world `counting-plugin`, for componentize-py.

A plugin's `app.py` is two lines::

    from wc_plugin.component import export
    from rule import MyRule
    Counter = export(MyRule)

componentize-py calls the interface `counter`'s functions on the app
module's class named after it (`Counter`, hence the assignment), and the
resource `task-counter`'s on class `TaskCounter` of a module named after the
interface (the SDK's top-level `counter.py`, which re-exports the one here).
Only importable inside a component: the `wit_world` bindings exist there.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import counter as wit

from wc_plugin import Counter as _Rule, PluginError, Task

_rule = None


def export(rule):
    """Makes `rule` (a `wc_plugin.Counter` subclass) the plugin; returns the
    class to bind as `Counter` in the app module."""
    global _rule
    if not (isinstance(rule, type) and issubclass(rule, _Rule)):
        raise TypeError(f"export() takes a wc_plugin.Counter subclass, not {rule!r}")
    info = rule.info()  # checks the declared params too
    if not info.columns or not all(isinstance(c, str) for c in info.columns):
        raise TypeError(f"{rule.__name__}.info().columns must be a non-empty list of str")
    _rule = rule
    return Counter


class Counter(exports.Counter):
    """Interface `counter`: its free function `info`."""

    def info(self):
        i = _rule.info()
        params = [wit.ParamInfo(name=p.name, default=p.default or "", help=p.help) for p in i.params]
        return wit.PluginInfo(name=i.name, version=i.version, description=i.description, columns=list(i.columns), params=params)


class TaskCounter(wit.TaskCounter):
    """Resource `task-counter`: a `wc_plugin.Task` whose errors become `err` results."""

    def __init__(self, task):
        self._task = task

    @classmethod
    def create(cls, params):
        try:
            return cls(Task(_rule, params))
        except PluginError as e:
            raise Err(str(e)) from None

    def feed(self, values, ends):
        try:
            self._task.feed(values, ends)
        except PluginError as e:
            raise Err(str(e)) from None

    def finish(self):
        try:
            p = self._task.finish()
        except PluginError as e:
            raise Err(str(e)) from None
        return wit.PackedCounts(keys=p.joined, key_ends=p.key_ends, counts=p.counts)
