"""Unit tests of the Python SDK, run natively:
    $VENV/bin/python -m pytest plugins/python/sdk/test_sdk.py
The component glue is tested against the stub bindings componentize-py
generates for wit/ (same names as inside a component)."""

import importlib
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from wc_plugin import Counter, Counts, Info, Packed, Param, Params, PluginError, Task, feed_batch, pack  # noqa: E402


def batch(rows):
    """(values, ends) for rows of str, as the host builds them: UTF-8 byte ends."""
    values, ends, n = [], [], 0
    for row in rows:
        for v in row:
            values.append(v)
            n += len(v.encode())
            ends.append(n)
    return "".join(values), ends


class Rows(Counter):
    """Records every row it gets, as a key."""

    name = "rows"
    columns = ["a", "b"]

    def count_row(self, row, counts):
        counts.add(" | ".join(row))


class Words(Counter):
    def count_row(self, row, counts):
        counts.update(row[0].split(" "))


def feed(rule, rows, params=()):
    task = Task(rule, list(params))
    task.feed(*batch(rows))
    return dict(task.finish())


def test_byte_offsets_of_non_ascii_text():
    rows = [["é", "日本"], ["", "😀x"], ["a\u0301", "ok"], ["", ""]]
    assert feed(Rows, rows) == {"é | 日本": 1, " | 😀x": 1, "a\u0301 | ok": 1, " | ": 1}


def test_ascii_and_non_ascii_batches_agree():
    ascii_rows = [["a b", "c"], ["", "d  e"]]
    assert feed(Rows, ascii_rows) == {"a b | c": 1, " | d  e": 1}
    assert feed(Words, [["x  y"], [""], ["ü y"]]) == {"x": 1, "": 2, "y": 2, "ü": 1}


def test_several_batches_add_up():
    task = Task(Words, [])
    task.feed(*batch([["a b"]]))
    task.feed(*batch([["b"], ["日本 b"]]))
    assert dict(task.finish()) == {"a": 1, "b": 3, "日本": 1}


@pytest.mark.parametrize(
    "values, ends, message",
    [
        ("abc", [1, 2, 3], "not a whole number of 2-column rows"),
        ("abc", [1, 4], "out of range"),
        ("日本", [1, 6], "not on a character boundary"),
        ("abcd", [3, 1], "not in order"),
        ("日本", [3, 7], "out of range"),
    ],
)
def test_bad_batches_are_errors(values, ends, message):
    with pytest.raises(PluginError, match=message):
        feed_batch(Rows(Params()), Counts(), 2, values, ends)


def test_empty_batch():
    assert feed(Rows, []) == {}


class Failing(Counter):
    def count_row(self, row, counts):
        if row[0] == "boom":
            raise ValueError("no boom")
        if row[0] == "exit":
            sys.exit(3)
        if row[0] == "user":
            raise PluginError("a message for the user")
        counts.add(row[0])


@pytest.mark.parametrize(
    "text, message",
    [
        ("boom", "count_row raised ValueError: no boom"),
        ("exit", "count_row raised SystemExit: 3"),
        ("user", "a message for the user"),
    ],
)
def test_exceptions_in_count_row_become_errors(text, message):
    task = Task(Failing, [])
    with pytest.raises(PluginError) as e:
        task.feed(*batch([["ok"], [text]]))
    assert str(e.value) == message


def test_params_default_to_none_accepted():
    with pytest.raises(PluginError, match=r"^unknown parameter `case` \(known: \)$"):
        Task(Words, [("case", "keep")])


class Picky(Counter):
    def __init__(self, params):
        params.check_known(["n", "on"])
        self.n = params.int("n", 1, minimum=0)
        self.on = params.flag("on", False)
        self.ratio = 1 / self.n

    def count_row(self, row, counts):
        counts.add(row[0], self.n)


def test_params_helpers():
    p = Params([("n", "1"), ("on", "yes"), ("n", "2")])
    assert (p.get("n"), p.get("x"), p.get("x", "d")) == ("2", None, "d")
    assert (p.int("n", 0), p.int("x", 7), p.flag("on", False), p.flag("x", True)) == (2, 7, True, True)
    with pytest.raises(PluginError, match="parameter `on` must be true or false, got `maybe`"):
        Params([("on", "maybe")]).flag("on", False)
    with pytest.raises(PluginError, match="parameter `n` must be at least 0, got -1"):
        Params([("n", "-1")]).int("n", 0, minimum=0)
    assert feed(Picky, [["a"], ["a"]], [("n", "3")]) == {"a": 6}


def test_exception_in_constructor_names_it():
    with pytest.raises(PluginError, match=r"^Picky\(params\) raised ZeroDivisionError: division by zero$"):
        Task(Picky, [("n", "0")])


def test_finish_validates_counts_and_drops_zeros():
    class Odd(Counter):
        def count_row(self, row, counts):
            key, _, n = row[0].partition("=")
            counts[key] = eval(n)  # the test's way to put any value in

    assert feed(Odd, [["a=0"], ["b=2"]]) == {"b": 2}
    for value, message in [("-1", "is -1, outside"), ("1.5", "is a float"), ("True", "is a bool"), (str(1 << 64), "outside")]:
        with pytest.raises(PluginError, match=message):
            feed(Odd, [[f"a={value}"]])

    class NotStr(Counter):
        def count_row(self, row, counts):
            counts.update(row[0].encode().split())

    with pytest.raises(PluginError, match=r"count key b'x' is a bytes, not a str"):
        feed(NotStr, [["x"]])


def test_lifecycle_errors_and_fresh_state_per_task():
    task = Task(Words, [])
    task.feed(*batch([["a"]]))
    assert list(task.finish()) == [("a", 1)]
    with pytest.raises(PluginError, match="finish called twice"):
        task.finish()
    with pytest.raises(PluginError, match="feed after finish"):
        task.feed(*batch([["a"]]))
    assert feed(Words, [["b"]]) == {"b": 1}


def test_info_from_class_attributes():
    assert Rows.info() == Info("rows", "0.0.0", "", ["a", "b"])
    assert Rows.info().params == []
    assert Words.info().name == "Words"


# ---------------------------------------------------------------- declared parameters


class Declared(Counter):
    columns = ["text"]
    params = [
        Param("min_len", default="2", help="shortest word counted"),
        Param("upper", default="no", help="upper-case the words"),
        Param("stop", help="comma-separated words not counted"),
    ]

    def __init__(self, params):
        params.check_known()
        self.min_len = params.int("min_len", minimum=1)
        self.upper = params.flag("upper")
        self.stop = set((params.get("stop") or "").split(","))

    def count_row(self, row, counts):
        for w in row[0].split():
            if len(w) >= self.min_len and w not in self.stop:
                counts.add(w.upper() if self.upper else w)


class Undeclaring(Counter):
    """Declares parameters and keeps the default __init__."""

    params = [Param("unused", default="x")]

    def count_row(self, row, counts):
        counts.add(row[0])


def test_declared_params_are_in_info():
    assert Declared.info().params == [
        Param("min_len", "2", "shortest word counted"),
        Param("upper", "no", "upper-case the words"),
        Param("stop", None, "comma-separated words not counted"),
    ]


def test_declared_defaults_apply_when_absent():
    assert feed(Declared, [["a bb ccc"]]) == {"bb": 1, "ccc": 1}
    assert feed(Declared, [["a bb ccc"]], [("min_len", "3"), ("upper", "yes")]) == {"CCC": 1}
    assert feed(Declared, [["a bb ccc"]], [("stop", "bb")]) == {"ccc": 1}
    p = Params([], Declared.params)
    assert (p.get("min_len"), p.get("stop"), p.get("nope")) == ("2", None, None)
    assert (p.int("min_len"), p.flag("upper"), p.int("nope"), p.flag("nope")) == (2, False, None, None)
    # An explicit default still wins over the declared one.
    assert (p.get("min_len", "9"), p.int("min_len", 9), p.flag("upper", True), p.int("stop", 5)) == ("9", 9, True, 5)


def test_declared_default_is_checked_like_a_given_value():
    class BadDefault(Counter):
        params = [Param("n", default="many")]

        def __init__(self, params):
            self.n = params.int("n")

    with pytest.raises(PluginError, match="parameter `n` must be an integer, got `many`"):
        Task(BadDefault, [])


def test_check_known_defaults_to_the_declared_names():
    with pytest.raises(PluginError, match=r"^unknown parameter `min` \(known: min_len, upper, stop\)$"):
        Task(Declared, [("min", "3")])
    # The default __init__ accepts what is declared, and only that.
    assert feed(Undeclaring, [["a"]], [("unused", "y")]) == {"a": 1}
    with pytest.raises(PluginError, match="unknown parameter `other`"):
        Task(Undeclaring, [("other", "1")])
    # An explicit list still works.
    Params([("a", "1")], Declared.params).check_known(["a"])


def test_bad_declarations_are_type_errors():
    for bad in [
        lambda: Param(""),
        lambda: Param("a=b"),
        lambda: Param(" a"),
        lambda: Param("a", default=1),
        lambda: Param("a", help=None),
    ]:
        with pytest.raises(TypeError):
            bad()

    class Twice(Counter):
        params = [Param("a"), Param("a")]

    class NotParams(Counter):
        params = ["a"]

    class AString(Counter):
        params = "a"

    for rule in (Twice, NotParams, AString):
        with pytest.raises(TypeError):
            rule.info()


# ---------------------------------------------------------------- packing


def unpack(p):
    """The documented layout, decoded independently of Packed.__iter__
    (`p` a `Packed` or the bindings' `PackedCounts`)."""
    raw = (p.keys if hasattr(p, "keys") else p.joined).encode()
    assert len(p.key_ends) == len(p.counts)
    assert all(a <= b for a, b in zip([0] + p.key_ends, p.key_ends))
    assert (p.key_ends[-1] if p.key_ends else 0) == len(raw)
    starts = [0] + p.key_ends[:-1]
    return {raw[s:e].decode(): n for s, e, n in zip(starts, p.key_ends, p.counts)}


@pytest.mark.parametrize(
    "counts",
    [
        {},
        {"a": 1},
        {"": 3},
        {"": 1, "a": 2, "": 1} | {"b": 5},
        {"ab": 1, "": 2, "c": 3, "déjà": 4, "日本": 5, "😀": 6, "": 7},
        {"é": 1},
        {"x" * 1000: 1, "": 2, "y": (1 << 64) - 1},
    ],
)
def test_pack_layout(counts):
    p = pack(list(counts), list(counts.values()))
    assert isinstance(p, Packed)
    assert unpack(p) == counts == dict(p)
    assert p.joined == "".join(counts)


def test_pack_byte_offsets_of_non_ascii_keys():
    p = pack(["é", "", "日本", "a", "😀"], [1, 2, 3, 4, 5])
    assert p.key_ends == [2, 2, 8, 9, 13]
    p = pack(["a", "", "bc"], [1, 1, 1])
    assert p.key_ends == [1, 1, 3]


def test_pack_many_keys():
    keys = [f"k{i}" for i in range(200_000)] + ["", "é"] + [f"ü{i}" for i in range(1000)]
    ns = list(range(1, len(keys) + 1))
    counts = dict(zip(keys, ns))
    assert unpack(pack(keys, ns)) == counts
    ascii_keys = keys[:200_000]
    assert unpack(pack(ascii_keys, ns[:200_000])) == dict(zip(ascii_keys, ns))


def test_pack_refuses_a_lone_surrogate():
    with pytest.raises(PluginError, match="not valid Unicode"):
        pack(["a", "é\ud800"], [1, 1])


def test_finish_packs_and_drops_zeros():
    class Mixed(Counter):
        def count_row(self, row, counts):
            counts.update(row[0].split(" "))
            counts["zero"] = 0

    task = Task(Mixed, [])
    task.feed(*batch([["a  日本 a"], [""]]))
    p = task.finish()
    assert unpack(p) == {"a": 2, "": 2, "日本": 1}


@pytest.fixture(scope="module")
def component(tmp_path_factory):
    """wc_plugin.component imported against componentize-py's stub bindings."""
    tool = shutil.which("componentize-py", path=str(pathlib.Path(sys.executable).parent))
    if tool is None:
        pytest.skip("componentize-py is not in this interpreter's venv")
    out = tmp_path_factory.mktemp("bindings")
    wit = HERE.parents[2] / "wit"
    subprocess.run([tool, "-d", str(wit), "-w", "counting-plugin", "bindings", str(out)], check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("wc_plugin.component")
    finally:
        sys.path.remove(str(out))


def test_component_exports(component):
    from componentize_py_types import Err

    wit_counter = component.export(Words)
    info = wit_counter().info()
    assert (info.name, info.columns, info.params) == ("Words", ["text"], [])
    task = component.TaskCounter.create([])
    task.feed(*batch([["a b"], ["é"]]))
    packed = task.finish()
    assert type(packed).__name__ == "PackedCounts"
    assert unpack(packed) == {"a": 1, "b": 1, "é": 1}
    with pytest.raises(Err) as e:
        task.finish()
    assert e.value.value == "finish called twice"
    with pytest.raises(Err) as e:
        component.TaskCounter.create([("x", "1")])
    assert e.value.value.startswith("unknown parameter `x`")
    component.export(Failing)
    task = component.TaskCounter.create([])
    with pytest.raises(Err) as e:
        task.feed(*batch([["boom"]]))
    assert e.value.value == "count_row raised ValueError: no boom"
    with pytest.raises(TypeError):
        component.export(object)


def test_component_declares_params(component):
    from componentize_py_types import Err

    info = component.export(Declared)().info()
    assert [(p.name, p.default, p.help) for p in info.params] == [
        ("min_len", "2", "shortest word counted"),
        ("upper", "no", "upper-case the words"),
        ("stop", "", "comma-separated words not counted"),
    ]
    assert type(info.params[0]).__name__ == "ParamInfo"
    task = component.TaskCounter.create([("upper", "true")])
    task.feed(*batch([["a bb"]]))
    assert unpack(task.finish()) == {"BB": 1}
    with pytest.raises(Err) as e:
        component.TaskCounter.create([("min_len", "0")])
    assert e.value.value == "parameter `min_len` must be at least 1, got 0"
