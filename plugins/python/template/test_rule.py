"""Native unit tests of the rule (pytest). `wc-host plugin build` runs them
before building, with the SDK (`wc_plugin`) on PYTHONPATH; by hand:
PYTHONPATH=<wc-host checkout>/plugins/python/sdk python -m pytest"""

from wc_plugin import Task

from rule import Rule


def count(*texts, **params):
    """Runs one task over rows of one column, as the host does."""
    task = Task(Rule, list(params.items()))
    ends, n = [], 0
    for t in texts:
        n += len(t.encode())
        ends.append(n)
    task.feed("".join(texts), ends)
    return dict(task.finish())


def test_splits_on_single_spaces():
    assert count("a b a") == {"a": 2, "b": 1}


def test_consecutive_spaces_and_empty_text_give_empty_strings():
    assert count("a  b", "") == {"a": 1, "b": 1, "": 2}


def test_unicode_is_kept():
    assert count("Café café 日本") == {"Café": 1, "café": 1, "日本": 1}
