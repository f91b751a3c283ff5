"""Guest-side SDK for wc-host counting plugins written in Python.

A plugin is a subclass of `Counter` -- a plain Python class, testable with
the ordinary interpreter -- plus a two-line `app.py` that hands it to
`wc_plugin.component.export`. The SDK owns the WIT exports (`info`, resource
`task-counter`), the batch decoding and the count map, so a plugin is only
its rule::

    from wc_plugin import Counter, Param

    class Shout(Counter):
        name = "shout"
        version = "0.1.0"
        description = "upper-cased whitespace-separated words of text"
        columns = ["text"]
        params = [Param("min_len", default="1", help="shortest word counted, in characters")]

        def __init__(self, params):
            params.check_known()                        # the declared names
            self.min_len = params.int("min_len", minimum=1)  # the declared default when absent

        def count_row(self, row, counts):
            counts.update(w.upper() for w in row[0].split() if len(w) >= self.min_len)

Parameters: the class attribute `params` declares every `--plugin-arg` the
rule accepts (name, default, help). The host shows them in `wc-host plugin
info` and refuses an undeclared key before the task starts; the `Params`
helpers use the declared default when a key is absent, and
`params.check_known()` checks against the declared names.

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
from itertools import accumulate as _accumulate
from operator import gt as _gt

__all__ = ["Counter", "Counts", "Info", "Packed", "Param", "Params", "PluginError", "Task", "feed_batch", "pack"]

# Counts cross the boundary as u64, key offsets as u32.
_MAX_COUNT = (1 << 64) - 1
_MAX_OFFSET = (1 << 32) - 1


class PluginError(Exception):
    """An error whose message is reported to the user verbatim."""


@dataclass(frozen=True)
class Param:
    """One parameter a rule accepts (`--plugin-arg NAME=VALUE`), declared in
    the rule's `params` class attribute; `param-info` in wit/plugin.wit.

    `default` is the value used when the parameter is not given, as a user
    would type it; `None` (shown as "" by `wc-host plugin info`) when the
    absence itself is the default, e.g. "the built-in stop list"."""

    name: str
    default: str | None = None
    help: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "=" in self.name or self.name != self.name.strip():
            raise TypeError(f"Param name must be a non-empty str without `=` or surrounding spaces, not {self.name!r}")
        if self.default is not None and not isinstance(self.default, str):
            raise TypeError(f"Param `{self.name}`: default must be a str (as typed on the command line) or None, not {self.default!r}")
        if not isinstance(self.help, str):
            raise TypeError(f"Param `{self.name}`: help must be a str, not {self.help!r}")


def _declared(params):
    """A rule's `params` attribute checked, as a list of `Param`."""
    if isinstance(params, (str, bytes)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be a list of wc_plugin.Param, not {params!r}")
    out, seen = [], set()
    for p in params:
        if not isinstance(p, Param):
            raise TypeError(f"params must be a list of wc_plugin.Param, not a list holding {p!r}")
        if p.name in seen:
            raise TypeError(f"parameter `{p.name}` is declared twice")
        seen.add(p.name)
        out.append(p)
    return out


@dataclass
class Info:
    """What a plugin says about itself (see `plugin-info` in wit/plugin.wit)."""

    name: str
    version: str
    description: str
    # CSV header names read, in the order `count_row` receives them.
    columns: list = field(default_factory=list)
    # The declared parameters, a list of `Param`.
    params: list = field(default_factory=list)


# "No default given by the caller": use the declared one.
_DECLARED = object()


class Params(list):
    """The `--plugin-arg key=value` pairs, in command-line order, with the
    rule's declared parameters (`declared`, a list of `Param`) for defaults
    and `check_known`.

    `Task` builds it with the rule's declarations; in a unit test calling a
    rule directly, pass them: `MyRule(Params([("k", "v")], MyRule.params))`.
    """

    def __init__(self, pairs=(), declared=()):
        super().__init__(pairs)
        self.declared = {p.name: p for p in _declared(declared)}

    def get(self, key, default=_DECLARED):
        """The last value given for `key`; when absent, `default` if given,
        else the declared default (`None` if there is none)."""
        for k, v in reversed(self):
            if k == key:
                return v
        if default is _DECLARED:
            p = self.declared.get(key)
            return None if p is None else p.default
        return default

    def check_known(self, known=None):
        """Fails on the first key not in `known` (default: the declared
        names), so a typo is not silently ignored."""
        if known is None:
            known = list(self.declared)
        for k, _ in self:
            if k not in known:
                raise PluginError(f"unknown parameter `{k}` (known: {', '.join(known)})")

    def _text(self, key, default):
        """(text, None) to parse: the value given, else the declared default
        when `default` is not given; (None, value) when `default` (given,
        used as is) or nothing applies. A declared default of "" or `None`
        means "none" for a typed parameter."""
        for k, v in reversed(self):
            if k == key:
                return v, None
        if default is _DECLARED:
            p = self.declared.get(key)
            return (p.default or None if p is not None else None), None
        return None, default

    def flag(self, key, default=_DECLARED):
        """A boolean parameter: true/false/1/0/yes/no. When absent:
        `default` if given, else the declared default parsed the same way
        (`None` if there is none)."""
        v, fallback = self._text(key, default)
        if v is None:
            return fallback
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no"):
            return False
        raise PluginError(f"parameter `{key}` must be true or false, got `{v}`")

    def int(self, key, default=_DECLARED, minimum=None):
        """An integer parameter, at least `minimum` if given. When absent:
        `default` if given, else the declared default parsed the same way
        (`None` if there is none)."""
        v, fallback = self._text(key, default)
        if v is None:
            return fallback
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
    # Every parameter accepted, a list of `Param` (none by default).
    params = []

    @classmethod
    def info(cls):
        return Info(cls.name or cls.__name__, cls.version, cls.description, list(cls.columns), _declared(cls.params))

    def __init__(self, params):
        """Parses `params` (a `Params`). The default accepts the declared
        parameters (none unless `params` declares some) and reads none."""
        params.check_known()

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
    """The counts as two lists, (keys, ns), for the host: zeros dropped,
    types checked."""
    keys = list(counts)
    ns = list(counts.values())
    # The common case checked with loops that run in C.
    if not keys or (
        set(map(type, keys)) == {str}
        and set(map(type, ns)) == {int}
        and min(ns) > 0
        and max(ns) <= _MAX_COUNT
    ):
        return keys, ns
    keys, ns = [], []
    for key, n in counts.items():
        if type(key) is str and type(n) is int and 0 < n <= _MAX_COUNT:
            keys.append(key)
            ns.append(n)
        elif n == 0:
            continue
        elif type(key) is not str:
            raise PluginError(f"count key {key!r} is a {type(key).__name__}, not a str")
        elif not isinstance(n, int) or isinstance(n, bool):
            raise PluginError(f"count of {key!r} is a {type(n).__name__}, not an int")
        else:
            raise PluginError(f"count of {key!r} is {n}, outside 0..2^64-1")
    return keys, ns


class Packed:
    """A task's counts as they cross the boundary (`packed-counts` in
    wit/plugin.wit): every key concatenated in `joined` (WIT `keys`),
    `key_ends[i]` the UTF-8 *byte* offset where key `i` ends, `counts[i]`
    its count.

    Iterating gives the `(key, n)` pairs back, so `dict(packed)` is the
    counts (for tests; the host never unpacks in Python). The field is not
    called `keys`: `dict()` would take the object for a mapping."""

    __slots__ = ("joined", "key_ends", "counts")

    def __init__(self, joined, key_ends, counts):
        self.joined, self.key_ends, self.counts = joined, key_ends, counts

    def __len__(self):
        return len(self.counts)

    def __iter__(self):
        raw = self.joined.encode()
        start = 0
        for end, n in zip(self.key_ends, self.counts):
            yield raw[start:end].decode(), n
            start = end

    def __repr__(self):
        return f"Packed({dict(self)!r})"


def _encodable(key):
    try:
        key.encode()
        return True
    except UnicodeEncodeError:
        return False


def pack(keys, ns):
    """`Packed` from a list of `str` keys and their counts.

    The offsets are UTF-8 byte offsets. When every key is ASCII (one O(1)
    `isascii()` on the joined string) byte lengths are `len`s and the
    running sum is `itertools.accumulate(map(len, keys))`, all in C;
    otherwise each key's length is that of its encoding, still in C.
    """
    joined = "".join(keys)
    if joined.isascii():
        ends = list(_accumulate(map(len, keys)))
    else:
        try:
            ends = list(_accumulate(map(len, map(str.encode, keys))))
        except UnicodeEncodeError:
            bad = next(k for k in keys if not _encodable(k))
            raise PluginError(f"count key {bad!r} is not valid Unicode (it holds a lone surrogate)") from None
    if ends and ends[-1] > _MAX_OFFSET:
        raise PluginError(f"the keys take {ends[-1]} bytes, more than the 4 GiB a task can return")
    return Packed(joined, ends, ns)


class Task:
    """One task, what the WIT resource `task-counter` does minus the
    bindings: `Task(rule_class, params)`, `feed` any number of times,
    `finish` once (a `Packed`). Every failure is a `PluginError` with the message the
    host reports."""

    def __init__(self, rule, params):
        info = rule.info()
        self.columns = len(info.columns)
        try:
            self.state = (rule(Params(params, info.params)), Counts())
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
        return pack(*_drain(counts))
