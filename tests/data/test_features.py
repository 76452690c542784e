"""Feature files and sidecars: round trips, the order of writes, and every bad-file error."""

import json

import numpy as np
import pytest

from mgrec.data import features as feats
from mgrec.data.features import (
    FeatureSidecar,
    check_sidecar,
    feature_path,
    inspect_features,
    load_features,
    read_sidecar,
    sidecar_path,
    write_features,
)
from mgrec.errors import InputError

SIDECAR = FeatureSidecar(fps=28.0, stride=4, window=16, backbone="videomae-s", dim=3, frames=100)


def test_paths():
    assert feature_path("/f", "Sample0001", ".npy") == feature_path("/f", "Sample0001", "npy")
    assert str(feature_path("/f", "Sample0001", "npz")) == "/f/Sample0001.npz"
    assert str(sidecar_path("/f/Sample0001.npz")) == "/f/Sample0001.json"


@pytest.mark.parametrize("name", ["v.npy", "v.npz"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_write_and_load_round_trip(tmp_path, name, dtype):
    array = np.arange(22 * 3, dtype=dtype).reshape(22, 3) / 7
    path = tmp_path / name
    written = write_features(path, array, SIDECAR)
    assert written.num_features == 22
    loaded = load_features(path, expected_dim=3)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array.astype(np.float32))
    assert inspect_features(path, 3) == (22, 3)
    assert read_sidecar(tmp_path / "v.json") == written
    if name == "v.npy":
        assert np.load(path).dtype == dtype  # stored as given
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "v.json"])


def test_write_features_removes_stale_sidecar_and_writes_it_last(tmp_path, monkeypatch):
    path = tmp_path / "v.npy"
    write_features(path, np.zeros((5, 3), np.float32), SIDECAR)
    assert (tmp_path / "v.json").exists()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(feats.np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_features(path, np.ones((9, 3), np.float32), SIDECAR)
    # the old array is intact, and no sidecar claims a finished new one
    assert np.load(path).shape == (5, 3)
    assert not (tmp_path / "v.json").exists()


def test_write_features_rejects_inconsistent_input(tmp_path):
    with pytest.raises(ValueError, match="dim 3"):
        write_features(tmp_path / "v.npy", np.zeros((5, 4), np.float32), SIDECAR)
    with pytest.raises(ValueError, match="float16/float32"):
        write_features(tmp_path / "v.npy", np.zeros((5, 3), np.float64), SIDECAR)


def _save(tmp_path, array, name="v.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def _truncated(tmp_path):
    path = _save(tmp_path, np.ones((50, 3), np.float32))
    path.write_bytes(path.read_bytes()[:-40])
    return path


def _garbage(tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(b"this is not an array at all")
    return path


def _empty(tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(b"")
    return path


def _npz_without_feats(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, features=np.ones((4, 3)), other=np.ones(2))
    return path


BAD_FILES = [
    (lambda p: p / "v.npy", "feature file not found"),
    (_empty, "empty (0 bytes)"),
    (_truncated, "truncated or corrupt"),
    (_garbage, "truncated or corrupt"),
    (_npz_without_feats, "no array 'feats' in this .npz; it holds: features, other"),
    (lambda p: _save(p, np.ones(12, np.float32)), "expected a 2-D array (T, C), found shape (12,)"),
    (lambda p: _save(p, np.ones((1, 4, 3), np.float32)), "found shape (1, 4, 3)"),
    (lambda p: _save(p, np.ones((0, 3), np.float32)), "feature array is empty"),
    (lambda p: _save(p, np.ones((4, 3), np.int64)), "found dtype int64"),
    (lambda p: _save(p, np.ones((4, 5), np.float32)), "expected feature dimension 3 (data.feature_dim), found 5"),
    (lambda p: _save(p, np.ones((3, 40), np.float32)), "looks transposed (C, T)"),
]


@pytest.mark.parametrize("make, expected", BAD_FILES)
@pytest.mark.parametrize("reader", [load_features, inspect_features])
def test_bad_feature_files(tmp_path, make, expected, reader):
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        reader(path, 3)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


@pytest.mark.parametrize("reader", [load_features, inspect_features])
def test_nan_and_inf_are_counted_and_located(tmp_path, reader, monkeypatch):
    monkeypatch.setattr(feats, "_SCAN_ROWS", 7)  # the first bad value sits in a later block
    array = np.zeros((30, 3), np.float16)
    array[17, 2] = np.nan
    array[20, 0] = np.inf
    array[29, 1] = -np.inf
    path = _save(tmp_path, array)
    with pytest.raises(InputError, match=r"v\.npy: 3 NaN/Inf value\(s\), the first at \[t=17, c=2\]"):
        reader(path, 3)


def _sidecar_file(tmp_path, **changes):
    raw = {"fps": 28, "stride": 4, "window": 16, "backbone": "b", "dim": 3, "frames": None, **changes}
    raw = {k: v for k, v in raw.items() if v != "DROP"}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_read_sidecar_defaults_and_types(tmp_path):
    sidecar = read_sidecar(_sidecar_file(tmp_path))
    assert sidecar == FeatureSidecar(fps=28.0, stride=4, window=16, backbone="b", dim=3, frames=None)
    assert isinstance(sidecar.fps, float)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"stride": "DROP"}, "[stride]: missing key"),
        ({"stride": 4.5}, "[stride]: expected a positive integer, got 4.5"),
        ({"fps": True}, "[fps]: expected a positive number"),
        ({"frames": -1}, "[frames]: expected a positive integer or null"),
        ({"backbone": ""}, "[backbone]: expected a backbone name"),
        ({"weights_sha256": "abc"}, "[weights_sha256]: expected 64 lower-case hex digits"),
        ({"strid": 4}, "[strid]: unknown key"),
    ],
)
def test_read_sidecar_errors(tmp_path, changes, expected):
    path = _sidecar_file(tmp_path, **changes)
    with pytest.raises(InputError) as info:
        read_sidecar(path)
    assert str(info.value).startswith(f"{path} ")
    assert expected in str(info.value)


def test_read_sidecar_bad_json(tmp_path):
    path = tmp_path / "v.json"
    path.write_text('{"fps": 28,\n "stride": }', encoding="utf-8")
    with pytest.raises(InputError, match=r"v\.json:2:\d+: feature sidecar file is not valid JSON"):
        read_sidecar(path)


def test_check_sidecar():
    check_sidecar(SIDECAR, stride=4, window=16, dim=3, fps=28.0004, source="a/v.json")  # within tolerance
    with pytest.raises(InputError) as info:
        check_sidecar(SIDECAR, stride=8, window=16, dim=5, fps=30, source="a/v.json")
    message = str(info.value)
    assert message.startswith("a/v.json: ")
    assert "stride is 4 in the sidecar but 8 in the config (data.stride)" in message
    assert "dim is 3 in the sidecar but 5 in the config (data.feature_dim)" in message
    assert "fps is 28 in the sidecar but 30" in message
    assert "window" not in message.split("features do not match the config: ")[1].split(". Re-extract")[0]
