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

from wc_plugin import Counter, Counts, Info, Params, PluginError, Task, feed_batch  # noqa: E402


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
    assert task.finish() == [("a", 1)]
    with pytest.raises(PluginError, match="finish called twice"):
        task.finish()
    with pytest.raises(PluginError, match="feed after finish"):
        task.feed(*batch([["a"]]))
    assert feed(Words, [["b"]]) == {"b": 1}


def test_info_from_class_attributes():
    assert Rows.info() == Info("rows", "0.0.0", "", ["a", "b"])
    assert Words.info().name == "Words"


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
    assert (info.name, info.columns) == ("Words", ["text"])
    task = component.TaskCounter.create([])
    task.feed(*batch([["a b"], ["é"]]))
    assert dict(task.finish()) == {"a": 1, "b": 1, "é": 1}
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
