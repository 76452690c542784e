"""The entry points `mgrec` itself offers (`mgrec/__init__.py`): each is the object its module defines, and
`import mgrec` alone loads none of them (no torch) until one is used."""

import importlib
import subprocess
import sys

import pytest

import mgrec


def test_every_entry_point_is_its_module_s_object_and_listed():
    names = [name for name in mgrec.__all__ if name != "__version__"]
    assert sorted(names) == sorted(mgrec._ENTRY_POINTS)  # __all__ is written out: it must list every entry point
    assert {"OfflineDetector", "OnlineDetector", "load_config", "score", "InputError"} <= set(names)
    for name in names:
        assert getattr(mgrec, name) is getattr(importlib.import_module(mgrec._ENTRY_POINTS[name]), name), name
    assert set(mgrec.__all__) <= set(dir(mgrec))
    with pytest.raises(AttributeError, match="module 'mgrec' has no attribute 'OflineDetector'"):
        mgrec.OflineDetector  # noqa: B018


def test_importing_mgrec_loads_no_entry_point_and_no_torch():
    code = ("import sys, mgrec; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('mgrec.'))); "
            "mgrec.Segment; print('mgrec.records' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True False"  # a record needs no torch either


def test_the_metrics_load_without_torch():
    # scoring lists of records (a notebook's, another toolkit's) took 1.6 s of importing torch through provenance
    code = "import sys, mgrec.evaluate.scoring, mgrec.evaluate.predictions; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("value, said", [(None, "got None"), (5, "got 5"),
                                         ({"database": {}}, "the file's path, not its contents"),
                                         (b"a.json", r"decode it \(bytes.decode\(\)\)"),
                                         (["a.json"], "one path, not a list")])
def test_a_path_argument_that_is_no_path_is_named(tmp_path, value, said):
    """The entry points that take a file's path, given something else (None, a number, the file's contents as a dict,
    bytes, a list of paths): a raw TypeError from pathlib, naming neither the argument nor the function."""
    calls = {
        "load_annotations: path": lambda: mgrec.load_annotations(value),
        "load_annotations: class_map": lambda: mgrec.load_annotations(tmp_path / "a.json", class_map=value),
        "load_config: path": lambda: mgrec.load_config(value),
        "save_config: path": lambda: mgrec.save_config(mgrec.Config(), value),
        "load_predictions: path": lambda: mgrec.load_predictions(value, ["PEN"]),
        "save_predictions: path": lambda: mgrec.save_predictions({}, value),
        "stream_file: input_path": lambda: mgrec.stream_file(tmp_path / "run", value),
    }
    if value is None:
        del calls["load_annotations: class_map"]  # None: no class map, the default
    for name, call in calls.items():
        with pytest.raises(mgrec.InputError, match=rf"^{name}: expected a path \(str or pathlib.Path\), .*{said}"):
            call()
