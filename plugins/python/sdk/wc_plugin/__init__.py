"""Guest-side SDK for wc-host counting plugins written in Python.

A plugin is a subclass of `Counter` -- a plain Python class, testable with
the ordinary interpreter -- plus a two-line `app.py` that hands it to
`wc_plugin.component.export`. The SDK owns the WIT exports (`info`, resource
`task-counter`), the batch decoding and the count map, so a plugin is only
its rule::

    from wc_plugin import Counter

    class Shout(Counter):
        name = "shout"
        version = "0.1.0"
        description = "upper-cased whitespace-separated words of text"
        columns = ["text"]

        def count_row(self, row, counts):
            for word in row[0].split():
                counts.add(word.upper())

Lifetime: the host creates one `Counter` per task (a file or a byte range
of one), feeds it every row of that task, then takes its counts. One
WebAssembly instance serves many tasks one after the other, and the
interpreter's state survives between them: module globals, class
attributes and caches outlive a task. Keep per-task state on `self`
(created in `__init__`) and treat module-level data as read-only constants;
the SDK gives every task a fresh `Counter` and a fresh `Counts`, so counts
never cross a task boundary unless the rule smuggles them through a global.

Errors: raise `PluginError("message")` for a message the user should read
as is (a bad parameter, say). Any other exception from `__init__` or
`count_row` fails the task with a message naming the exception
(`count_row raised ValueError: ...`); it never traps the instance.

A rule gets no files, network, environment or clock (the host denies
them): its counts must depend on the rows and parameters only.
"""

from collections import Counter as _Counter
from dataclasses import dataclass, field
from operator import gt as _gt

__all__ = ["Counter", "Counts", "Info", "Params", "PluginError", "Task", "feed_batch"]

# Counts cross the boundary as u64.
_MAX_COUNT = (1 << 64) - 1


class PluginError(Exception):
    """An error whose message is reported to the user verbatim."""


@dataclass
class Info:
    """What a plugin says about itself (see `plugin-info` in wit/plugin.wit)."""

    name: str
    version: str
    description: str
    # CSV header names read, in the order `count_row` receives them.
    columns: list = field(default_factory=list)


class Params(list):
    """The `--plugin-arg key=value` pairs, in command-line order."""

    def get(self, key, default=None):
        """The last value given for `key`, or `default`."""
        for k, v in reversed(self):
            if k == key:
                return v
        return default

    def check_known(self, known):
        """Fails on the first key not in `known`, so a typo is not silently ignored."""
        for k, _ in self:
            if k not in known:
                raise PluginError(f"unknown parameter `{k}` (known: {', '.join(known)})")

    def flag(self, key, default):
        """A boolean parameter: true/false/1/0/yes/no."""
        v = self.get(key)
        if v is None:
            return default
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no"):
            return False
        raise PluginError(f"parameter `{key}` must be true or false, got `{v}`")

    def int(self, key, default, minimum=None):
        """An integer parameter, at least `minimum` if given."""
        v = self.get(key)
        if v is None:
            return default
        try:
            n = int(v)
        except ValueError:
            raise PluginError(f"parameter `{key}` must be an integer, got `{v}`") from None
        if minimum is not None and n < minimum:
            raise PluginError(f"parameter `{key}` must be at least {minimum}, got {n}")
        return n


class Counts(_Counter):
    """Counts of one task: a `collections.Counter` with `add`.

    `counts.update(tokens)` counts each element of an iterable once and runs
    in C: prefer it to a Python loop of `add` when a rule produces a list.
    Keys must be `str`; counts must be non-negative integers (zeros are
    dropped when the task finishes).
    """

    def add(self, key, n=1):
        # dict.get, not Counter.__missing__ (a Python-level call per new key).
        self[key] = self.get(key, 0) + n


class Counter:
    """A counting rule. One instance per task: `__init__(params)`, then
    `count_row(row, counts)` per row.

    Describe the plugin with the class attributes below (or override the
    `info` classmethod).
    """

    name = None  # default: the class name
    version = "0.0.0"
    description = ""
    columns = ["text"]

    @classmethod
    def info(cls):
        return Info(cls.name or cls.__name__, cls.version, cls.description, list(cls.columns))

    def __init__(self, params):
        """Parses `params` (a `Params`). The default takes none."""
        params.check_known([])

    def count_row(self, row, counts):
        """Adds one row's keys. `row` is a list with one `str` per column of
        `info().columns`; `counts` is this task's `Counts`."""
        raise NotImplementedError


def _describe(exc):
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def feed_batch(counter, counts, columns, values, ends):
    """Decodes one batch (see `feed` in wit/plugin.wit) and counts its rows.

    `ends` are UTF-8 *byte* offsets into `values`, a `str`. ASCII text
    (`str.isascii()` is O(1) in CPython) has byte offsets equal to character
    offsets and is sliced as is; other text is encoded once per batch and
    each value decoded from its byte slice, which is exact and refuses an
    offset inside a character.
    """
    n = len(ends)
    if columns <= 0 or n % columns:
        raise PluginError(f"batch of {n} values is not a whole number of {columns}-column rows")
    if n == 0:
        return
    starts = [0]
    starts += ends[:-1]
    if any(map(_gt, starts, ends)):
        raise PluginError("batch offsets are not in order")
    if values.isascii():
        if ends[-1] > len(values):
            raise PluginError("batch offsets out of range")
        vals = [values[s:e] for s, e in zip(starts, ends)]
    else:
        raw = values.encode()
        if ends[-1] > len(raw):
            raise PluginError("batch offsets out of range")
        try:
            vals = [raw[s:e].decode() for s, e in zip(starts, ends)]
        except UnicodeDecodeError:
            raise PluginError("batch offset not on a character boundary") from None
    count_row = counter.count_row
    try:
        if columns == 1:
            for v in vals:
                count_row([v], counts)
        else:
            for i in range(0, n, columns):
                count_row(vals[i : i + columns], counts)
    except PluginError:
        raise
    except BaseException as e:  # SystemExit too: an err, never a trap
        raise PluginError(f"count_row raised {_describe(e)}") from None


def _drain(counts):
    """The counts as (key, n) pairs for the host: zeros dropped, types checked."""
    values = counts.values()
    # The common case checked with loops that run in C.
    if not counts or (
        set(map(type, counts)) == {str}
        and set(map(type, values)) == {int}
        and min(values) > 0
        and max(values) <= _MAX_COUNT
    ):
        return list(counts.items())
    out = []
    append = out.append
    for key, n in counts.items():
        if type(key) is str and type(n) is int and 0 < n <= _MAX_COUNT:
            append((key, n))
        elif n == 0:
            continue
        elif type(key) is not str:
            raise PluginError(f"count key {key!r} is a {type(key).__name__}, not a str")
        elif not isinstance(n, int) or isinstance(n, bool):
            raise PluginError(f"count of {key!r} is a {type(n).__name__}, not an int")
        else:
            raise PluginError(f"count of {key!r} is {n}, outside 0..2^64-1")
    return out


class Task:
    """One task, what the WIT resource `task-counter` does minus the
    bindings: `Task(rule_class, params)`, `feed` any number of times,
    `finish` once. Every failure is a `PluginError` with the message the
    host reports."""

    def __init__(self, rule, params):
        self.columns = len(rule.info().columns)
        try:
            self.state = (rule(Params(params)), Counts())
        except PluginError:
            raise
        except BaseException as e:
            raise PluginError(f"{rule.__name__}(params) raised {_describe(e)}") from None

    def feed(self, values, ends):
        if self.state is None:
            raise PluginError("feed after finish")
        counter, counts = self.state
        feed_batch(counter, counts, self.columns, values, ends)

    def finish(self):
        if self.state is None:
            raise PluginError("finish called twice")
        _, counts = self.state
        self.state = None
        return _drain(counts)
