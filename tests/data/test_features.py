"""Feature files and sidecars: round trips, the order of writes, and every bad-file error."""

import io
import json
import pickle
import re
import tracemalloc
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from mgrec.data import features as feats
from mgrec.data.features import (
    MAX_FEATURE_ABS,
    FeatureSidecar,
    check_sidecar,
    check_sidecar_length,
    feature_path,
    inspect_features,
    list_feature_files,
    load_features,
    read_sidecar,
    sidecar_path,
    write_features,
)
from mgrec.errors import InputError
from mgrec.smg_csv import fps_problem

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
    # the old array is intact, and no sidecar claims a finished new one: the old pair is as it was
    assert np.load(path).shape == (5, 3)
    assert read_sidecar(tmp_path / "v.json").num_features == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json", "v.npy"]


def test_a_feature_file_that_meets_a_full_disk_keeps_its_old_pair_whole(tmp_path, monkeypatch):
    # the old sidecar was removed before the array was written: where the array then met a full disk, the old array
    # stayed whole without its sidecar, untrusted (the rows an extraction saved of a video, lost with it)
    import errno
    import os

    path = tmp_path / "v.npy"
    write_features(path, np.zeros((5, 3), np.float32), SIDECAR)
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(feats.np, "save", full_disk)
    with pytest.raises(InputError, match=rf"^cannot write {re.escape(str(path))}: No space left on device$"):
        write_features(path, np.ones((9, 3), np.float32), SIDECAR)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old  # the pair as it was, nothing beside it
    # an array that was replaced before the failure (its folder's fsync): the old sidecar is not put back beside it
    monkeypatch.undo()
    monkeypatch.setattr("mgrec.files._fsync_folder", full_disk)
    with pytest.raises(InputError, match=r"No space left on device"):
        write_features(path, np.ones((9, 3), np.float32), SIDECAR)
    assert np.load(path).shape == (9, 3) and not (tmp_path / "v.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy"]


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


def _appended(tmp_path):  # a long extraction saved part by part into one open file: the first part alone was read
    path = tmp_path / "v.npy"
    with open(path, "wb") as handle:
        np.save(handle, np.ones((50, 3), np.float32))
        np.save(handle, np.ones((70, 3), np.float32))
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


def _spaced_id(tmp_path):
    # the file of video id "v ", a space at its end, extracted as `v.npy`: "not found" of `v .npy` said nothing more
    _save(tmp_path, np.ones((4, 3), np.float32))
    return tmp_path / "v .npy"


def _link_loop(tmp_path):
    (tmp_path / "v.npy").symlink_to(tmp_path / "w.npy")
    (tmp_path / "w.npy").symlink_to(tmp_path / "v.npy")
    return tmp_path / "v.npy"


def _link_to_a_drive_gone(tmp_path):
    (tmp_path / "v.npy").symlink_to("/mnt/unmounted/v.npy")
    return tmp_path / "v.npy"


BAD_FILES = [
    (lambda p: p / "v.npy", "feature file not found"),
    # a name that is there: said as `data check` says it, not "not found" (row 400's readers)
    (_link_loop, "feature file cannot be read: a symbolic link loop (following its links leads back to them, never "
                 "to a file)"),
    (_link_to_a_drive_gone, "feature file cannot be read: a symbolic link to /mnt/unmounted/v.npy, which does not "
                            "exist"),
    (_spaced_id, "feature file not found; 'v.npy' is there, a name that reads the same (the two differ only in "
                 "whitespace at the start or end of the name: 'v .npy' and 'v.npy', which print alike)"),
    (_empty, "empty (0 bytes)"),
    (_truncated, "truncated or corrupt"),
    (_garbage, "truncated or corrupt"),
    (_appended, "holds 968 bytes after its array of shape (50, 3) (arrays appended with np.save to one file?)"),
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
        ({"precision": "fp16"}, '[precision]: expected "fp32", "bf16" or null (not recorded), got'),
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
    assert "fps is 28 in the sidecar (the frame rate of the video the features were extracted from) but 30" in message
    assert "window" not in message.split("features do not match the config: ")[1].split(". Extracting")[0]


def test_a_sidecar_fps_other_than_the_config_s_says_where_each_comes_from_and_that_extracting_again_will_not_help():
    # SMG's features made from a copy re-encoded at 30 fps, smg/*.yaml's data.fps 28: "fps is 30 in the sidecar but 28
    # for this video. Re-extract the features or change the config." named neither where the 28 came from nor that
    # extracting again gives the same 30 (extract keeps each video's own rate)
    with pytest.raises(InputError) as info:
        check_sidecar(SIDECAR, stride=4, window=16, dim=3, fps=30, source="a/v.json")
    message = str(info.value)
    assert ("fps is 28 in the sidecar (the frame rate of the video the features were extracted from) but 30 in the "
            "config (data.fps). Extracting again gives the same rate") in message
    assert "Re-extract" not in message
    assert "the 30 fps video whose frames the labels number" in message
    assert message.endswith("and set data.fps to null (--set data.fps=null)")
    # the rate the annotations give (data.fps null): no config key to change
    with pytest.raises(InputError) as info:
        check_sidecar(SIDECAR, stride=4, window=16, dim=3, fps=30, source="a/v.json",
                      fps_from="in the annotations (ann.json [database.v])")
    message = str(info.value)
    assert "but 30 in the annotations (ann.json [database.v])" in message
    assert "data.fps" not in message
    # with another field wrong too, both remedies
    with pytest.raises(InputError, match=r"fps=null\); for the rest, re-extract the features or change the config\.$"):
        check_sidecar(SIDECAR, stride=8, window=16, dim=3, fps=30, source="a/v.json")


# ---------------------------------------------------------------------------------------------
# Paths built from video ids (family 2)


@pytest.mark.parametrize(
    "video_id, problem",
    [
        ("..", "is not a file name"),
        (".", "is not a file name"),
        ("", "is empty"),
        ("../secret", "contains a path separator"),
        ("/etc/passwd", "contains a path separator"),
        ("a/b", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        ("C:secret", "starts with a drive"),
        ("v\0.npy", "contains a NUL character"),
        ("x" * 300, "is longer than 255 bytes"),
    ],
)
def test_feature_path_refuses_video_ids_that_leave_the_folder(video_id, problem):
    with pytest.raises(InputError) as info:
        feature_path("/f", video_id, "npy")
    message = str(info.value)
    assert message.startswith("video id ") and problem in message and "inside /f" in message
    assert "\n" not in message and "\0" not in message and len(message) < 300


@pytest.mark.parametrize("video_id", ["a..b", "...", "Sample 1 (copy)", "é-ü", ".hidden"])
def test_feature_path_keeps_plain_names(video_id):
    assert feature_path("/f", video_id, "npy") == Path("/f") / f"{video_id}.npy"


def test_list_feature_files_skips_hidden_and_apple_double_files(tmp_path):
    for name in ["b.npy", "a.npz", "._b.npy", ".c.npy", "...npy", ".d.npy", "notes.txt", "b.json"]:
        (tmp_path / name).write_bytes(b"x")
    listing = list_feature_files(tmp_path)
    assert [p.name for p in listing.files] == ["a.npz", "b.npy"]
    assert sorted(p.name for p in listing.skipped) == ["...npy", "._b.npy", ".c.npy", ".d.npy"]
    assert listing.note() == f"{tmp_path}: skipped 4 hidden entries ('...npy', '._b.npy', '.c.npy', ...)"


def test_a_feature_name_of_a_folder_that_cannot_be_read_is_refused_not_left_out(tmp_path):
    """A link to a file gone (a drive not mounted), a folder named like a feature file: skipped with a note, its video
    was missing from `mgrec detect`'s output, which exited 0."""
    (tmp_path / "b.npy").write_bytes(b"x")
    (tmp_path / "gone.npy").symlink_to(tmp_path / "elsewhere" / "gone.npy")
    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(InputError) as refused:
        list_feature_files(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}: 2 of the 3 feature files cannot be read (folder.npy: a folder, not a feature file; gone.npy: a "
        f"symbolic link to {tmp_path / 'elsewhere' / 'gone.npy'}, which does not exist); a folder is read whole: "
        "restore them, or move them out of it")


def test_a_folder_of_only_junk_names_what_it_skipped(tmp_path):
    (tmp_path / "._v.npy").write_bytes(b"\0\5\26\7")
    with pytest.raises(InputError, match=r"folder holds no feature files \(\.npy, \.npz\); skipped 1 hidden"):
        list_feature_files(tmp_path)
    with pytest.raises(InputError, match="missing: no such folder$"):
        list_feature_files(tmp_path / "missing")


def test_a_folder_of_videos_given_for_features_says_how_to_use_them(tmp_path):
    # `mgrec detect RUN videos/` said only "folder holds no feature files", though detect takes videos.
    for name in ("b.mp4", "a.MOV", "._c.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError) as error:
        list_feature_files(tmp_path)
    assert str(error.value) == (
        f"{tmp_path}: folder holds no feature files (.npy, .npz), but 2 video file(s) (a.MOV, ...): give the video "
        f"files themselves ({tmp_path}/*.MOV), or make their features with mgrec extract {tmp_path} --out FEATURES"
    )


# ---------------------------------------------------------------------------------------------
# Numbers (family 3): dtypes and the value range


def test_float64_features_are_accepted_and_returned_as_float32(tmp_path):
    array = np.linspace(-MAX_FEATURE_ABS, MAX_FEATURE_ABS, 12).reshape(4, 3)
    path = _save(tmp_path, array)
    np.testing.assert_array_equal(load_features(path, 3), array.astype(np.float32))


@pytest.mark.parametrize(
    "value, expected",
    [
        (3e38, "1 value(s) outside +-1e+06, the first 3e+38 at [t=2, c=1]"),  # float32's largest: overflows the net
        (-2e6, "1 value(s) outside +-1e+06, the first -2e+06 at [t=2, c=1]"),
        (np.nan, "1 NaN/Inf value(s), the first at [t=2, c=1]"),
    ],
)
@pytest.mark.parametrize("reader", [load_features, inspect_features])
def test_values_out_of_range_are_refused_with_their_place(tmp_path, value, expected, reader):
    array = np.ones((5, 3), np.float32)
    array[2, 1] = value
    path = _save(tmp_path, array)
    with pytest.raises(InputError) as info:
        reader(path, 3)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_features_scaled_by_1e30_are_refused(tmp_path):
    path = _save(tmp_path, np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 1e30)
    with pytest.raises(InputError, match="outside \\+-1e\\+06"):
        load_features(path, 3)


def test_the_range_is_checked_in_every_block(tmp_path, monkeypatch):
    monkeypatch.setattr(feats, "_SCAN_ROWS", 4)
    array = np.zeros((30, 3), np.float32)
    array[[13, 21], 0] = 5e6
    with pytest.raises(InputError, match=r"2 value\(s\) outside .* the first 5e\+06 at \[t=13, c=0\]"):
        load_features(_save(tmp_path, array), 3)


def test_float16_features_at_their_largest_value_are_accepted(tmp_path):
    array = np.full((4, 3), 65504, np.float16)  # below the bound: float16 cannot exceed it
    assert inspect_features(_save(tmp_path, array), 3) == (4, 3)


@pytest.mark.parametrize("dtype", ["<f16", ">i4", "complex64", "bool", "U3"])
def test_other_dtypes_are_named(tmp_path, dtype):
    path = _save(tmp_path, np.zeros((4, 3), dtype))
    with pytest.raises(InputError, match=r"expected float16/float32/float64 features, found dtype"):
        load_features(path, 3)


def test_big_endian_float32_is_read(tmp_path):
    array = np.arange(12, dtype=">f4").reshape(4, 3)
    np.testing.assert_array_equal(load_features(_save(tmp_path, array), 3), array.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Output hygiene (family 7): a pickle is named as such, and numpy's advice is not relayed


@pytest.mark.parametrize("name", ["v.npy", "v.npz"])
def test_object_arrays_are_called_not_a_plain_array(tmp_path, name):
    path = tmp_path / name
    objects = np.array([{"a": 1}, None], dtype=object)
    if name.endswith(".npz"):
        np.savez(path, feats=objects)
    else:
        np.save(path, objects, allow_pickle=True)
    with pytest.raises(InputError) as info:
        load_features(path, 3)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read features: not a plain array") and "never unpickles" in message
    assert "allow_pickle" not in message and "unsafely" not in message


def test_a_pickle_file_is_named_as_such(tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(pickle.dumps({"features": [1, 2]}))
    with pytest.raises(InputError, match="a Python pickle, not a plain array") as info:
        load_features(path, 3)
    assert "allow_pickle" not in str(info.value)


def test_a_video_given_as_features_says_to_extract_it(tmp_path, carphone):
    # `OfflineDetector.detect("clip.mp4")` said "truncated or corrupt file?" of a good video
    with pytest.raises(InputError, match=r"carphone_pristine.mp4: a video, not a feature file: turn it into features "
                                         r"first \(`mgrec extract`"):
        load_features(carphone, 3)


# ---------------------------------------------------------------------------------------------
# Resource bombs (family 4): headers are checked before anything is read or allocated


def _npz_with_member_bytes(path: Path, member: bytes, compress: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        archive.writestr("feats.npy", member)
    return path


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _peak_allocation(read, *args) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        read(*args)
        error = None
    except InputError as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


@pytest.mark.parametrize("reader", [load_features, inspect_features])
def test_an_npz_whose_header_claims_1e9_rows_allocates_nothing(tmp_path, reader):
    path = _npz_with_member_bytes(tmp_path / "v.npz", _npy_header((10**9, 16)) + b"\0" * 4096)
    error, peak = _peak_allocation(reader, path, 16)
    assert error is not None and "truncated or corrupt" in str(error)
    assert "(1000000000, 16)" in str(error) and "64,000,000,000 bytes" in str(error)
    assert peak < 2**20  # the 64 GB the header claims were never asked for


def test_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    # 64 MiB of zeros deflate to 64 KiB; with the limit at 2**20 values (4 MiB) the member's declared size
    # is refused before it is inflated, as a 2.5 GB bomb is against the real limit.
    monkeypatch.setattr(feats, "MAX_FEATURE_VALUES", 2**20)
    rows = 2**22
    member = _npy_header((rows, 4)) + bytes(rows * 16)
    path = _npz_with_member_bytes(tmp_path / "v.npz", member, compress=True)
    assert path.stat().st_size < 2**20
    del member
    error, peak = _peak_allocation(load_features, path, 4)
    assert error is not None and "16,777,216 values; one feature file may hold at most 1,048,576" in str(error)
    assert peak < 2**21


def test_a_file_with_more_values_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(feats, "MAX_FEATURE_VALUES", 100)
    path = _save(tmp_path, np.zeros((34, 3), np.float32))  # 102 values
    with pytest.raises(InputError, match="is 102 values; one feature file may hold at most 100"):
        inspect_features(path, 3)
    assert inspect_features(_save(tmp_path, np.zeros((33, 3), np.float32)), 3) == (33, 3)


def test_an_npz_with_a_million_keys_gives_a_short_message(tmp_path):
    path = tmp_path / "v.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(2000):
            archive.writestr(f"x{k}" * 20 + ".npy", b"")
        archive.writestr("\x1b[31mred\u202e.npy", b"")
    with pytest.raises(InputError) as info:
        load_features(path, 3)
    message = str(info.value)
    assert "no array 'feats' in this .npz" in message and "(2001 in all)" in message
    assert len(message) < 700


@pytest.mark.parametrize(
    "member",
    [
        _npy_header((4, 3))[:20],  # the header cut short
        _npy_header((4, 3)).replace(b"'<f4'", b"'<f8'") + bytes(48),  # data for half the declared shape
        _npy_header((-4, 3)) + bytes(48),
        b"\x93NUMPY\x07\x00" + bytes(100),  # an unknown format version
        _npy_header((4, 3)) + bytes(47),  # one byte short
    ],
    ids=["cut header", "half the data", "negative shape", "unknown version", "one byte short"],
)
def test_broken_npz_members_are_input_errors(tmp_path, member):
    path = _npz_with_member_bytes(tmp_path / "v.npz", member)
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_features(path, 3)


def test_a_corrupt_compressed_member_is_an_input_error(tmp_path):
    path = tmp_path / "v.npz"
    np.savez_compressed(path, feats=np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32))
    data = bytearray(path.read_bytes())
    data[200:260] = bytes(60)  # inside the deflated data
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_features(path, 3)


@pytest.mark.parametrize("name", ["v.npy", "v.npz"])
def test_fortran_order_arrays_load_right(tmp_path, name):
    array = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(4, 3))
    path = tmp_path / name
    if name.endswith(".npz"):
        np.savez(path, feats=array)
    else:
        np.save(path, array)
    np.testing.assert_array_equal(load_features(path, 3), array)


def test_a_pipe_given_as_a_feature_file_is_named_as_such(tmp_path):
    import os

    from mgrec.data.features import load_features

    fifo = tmp_path / "live.npy"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file \\(a pipe, device or folder\\)"):
        load_features(fifo)


@pytest.mark.parametrize("fps", [1e300, 1e-300, 1000.5, 0.0, -5.0, 0.5, 28.0, 1000.0])
def test_sidecar_fps_is_refused_exactly_when_the_frame_rate_rule_refuses_it(tmp_path, fps):
    # One frame-rate rule (`mgrec.smg_csv.fps_problem`) for sidecars, annotations and data.fps.
    path = _sidecar_file(tmp_path, fps=fps)
    if fps_problem(fps) is None:
        assert read_sidecar(path).fps == fps
    else:
        with pytest.raises(InputError, match=r"v\.json \[fps\]: expected a positive number of frames per second, "
                                             r"at most 1000, got"):
            read_sidecar(path)


def test_a_huge_sidecar_fps_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"\[fps\]: expected .* at most 1000, got 1e\+300"):
        read_sidecar(_sidecar_file(tmp_path, fps=1e300))


def test_a_sidecar_fps_integer_beyond_the_float_range_is_refused(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"fps": "HUGE", "stride": 4, "window": 16, "backbone": "b", "dim": 3, "frames": None})
                    .replace('"HUGE"', "1" + "0" * 400), encoding="utf-8")
    with pytest.raises(InputError, match=r"v\.json \[fps\]: expected a positive number of frames per second") as error:
        read_sidecar(path)
    assert len(str(error.value)) < len(str(path)) + 200  # the 401 digits are cut short


def test_a_sidecar_whose_num_features_disagrees_is_refused_by_the_loader(tmp_path):
    # detect and stream read features through load_features: a sidecar recording another length (an
    # interrupted extraction, a file replaced beside it) is refused there as data check refuses it.
    path = tmp_path / "v.npy"
    write_features(path, np.zeros((22, 3), np.float32), SIDECAR)
    raw = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    sidecar_path(path).write_text(json.dumps({**raw, "num_features": 5}), encoding="utf-8")
    expected = f"{tmp_path / 'v.json'}: sidecar says 5 feature steps but v.npy holds 22 (interrupted extraction?)"
    with pytest.raises(InputError) as info:
        load_features(path, 3)
    assert str(info.value) == expected
    with pytest.raises(InputError) as info:
        check_sidecar_length(path, 22, read_sidecar(sidecar_path(path)))
    assert str(info.value) == expected
    assert inspect_features(path, 3) == (22, 3)  # data check counts the steps and reports both
    sidecar_path(path).write_text(json.dumps({**raw, "num_features": None}), encoding="utf-8")
    assert load_features(path, 3).shape == (22, 3)  # not recorded: nothing to compare


def test_a_non_utf8_sidecar_is_refused_with_its_line(tmp_path):
    path = tmp_path / "v.npy"
    write_features(path, np.zeros((22, 3), np.float32), SIDECAR)
    text = sidecar_path(path).read_bytes()
    sidecar_path(path).write_bytes(text.replace(b"videomae-s", b"videomae-\xff"))
    line = text[: text.index(b"videomae-s")].count(b"\n") + 1
    with pytest.raises(InputError, match=rf"v\.json:{line}: not UTF-8 text \(byte 0xff at offset \d+\)"):
        read_sidecar(sidecar_path(path))


@pytest.mark.filterwarnings("error")  # numpy's "created on Python 2" UserWarning would fail the test
@pytest.mark.parametrize("reader", [load_features, inspect_features])
@pytest.mark.parametrize("name", ["v.npy", "v.npz"])
def test_a_header_numpy_parses_only_after_filtering_gives_no_stray_warning(tmp_path, reader, name):
    # `(-10L, 3)` is Python 2's long syntax: numpy parses it on a second try and warns before mgrec's own error.
    member = _npy_header((10, 3)).replace(b"(10, 3)", b"(-10L, 3)") + b"\0" * 120
    path = tmp_path / name
    if name == "v.npz":
        _npz_with_member_bytes(path, member)
    else:
        path.write_bytes(member)
    with pytest.raises(InputError, match=r"shape \(-10, 3\) in the header"):
        reader(path, 3)


def test_a_sidecar_given_for_its_features_names_the_array_to_give(tmp_path):
    # `detect RUN features/x.json` said "cannot read features (truncated or corrupt file?)"
    np.save(tmp_path / "x.npy", np.zeros((4, 2), dtype=np.float32))
    (tmp_path / "x.json").write_text('{"fps": 30}')
    with pytest.raises(InputError, match=r"x.json: is the sidecar of the features x.npy .*not features: give .*x.npy$"):
        load_features(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{}")  # no array beside it: what it was
    with pytest.raises(InputError, match=r"y.json: a JSON file, not features \(a .npy or .npz array"):
        load_features(tmp_path / "y.json")


def test_a_fingerprint_reads_the_same_values_alike_in_any_container(tmp_path):
    values = np.random.default_rng(3).standard_normal((50, 6)).astype(np.float16).astype(np.float32)
    np.save(tmp_path / "a.npy", values)
    np.save(tmp_path / "half.npy", values.astype(np.float16))  # the same values, stored float16
    np.savez(tmp_path / "b.npz", feats=np.asfortranarray(values))
    whole = feats.feature_fingerprint(tmp_path / "a.npy")
    assert whole.shape == (feats.FINGERPRINT_ROWS, 6) and whole.dtype == np.float32
    np.testing.assert_array_equal(whole[[0, -1]], values[[0, -1]])  # the first and last rows among them
    for name in ("half.npy", "b.npz"):
        assert feats.same_features(whole, feats.feature_fingerprint(tmp_path / name)) == "hold the same features"
    np.save(tmp_path / "short.npy", values[:5])  # fewer rows than a fingerprint: all of them
    np.testing.assert_array_equal(feats.feature_fingerprint(tmp_path / "short.npy"), values[:5])
    np.save(tmp_path / "flat.npy", values.ravel())
    with pytest.raises(InputError, match=r"flat.npy: expected a 2-D array \(T, C\), found shape \(300,\)"):
        feats.feature_fingerprint(tmp_path / "flat.npy")


def test_same_features_takes_float_rounding_and_nothing_more():
    rng = np.random.default_rng(5)
    video = rng.standard_normal((16, 32)).astype(np.float32)
    scale = float(np.abs(video).max())
    assert feats.same_features(video, video.copy()) == "hold the same features"
    # the video extracted again in another runtime (a relative 2e-6), or stored float16: one video
    for again in (video * (1 + 2e-6 * rng.standard_normal(video.shape)).astype(np.float32),
                  video.astype(np.float16).astype(np.float32)):
        assert feats.same_features(video, again) == "hold the same features up to float rounding"
    nudged = video.copy()
    nudged[7, 3] += 2 * feats.COPY_TOLERANCE * scale  # one value further than rounding goes: another video
    assert feats.same_features(video, nudged) is None
    assert feats.same_features(video, rng.standard_normal((16, 32)).astype(np.float32)) is None
    with_nan = video.copy()
    with_nan[0, 0] = np.nan
    assert feats.same_features(with_nan, with_nan.copy()) is None and feats.same_features(video, with_nan) is None
    with_inf = video.copy()
    with_inf[0, 0] = np.inf  # an infinity made the tolerance infinite: it was the same features as any other video
    assert feats.same_features(video, with_inf) is None and feats.same_features(with_inf, -video) is None
    assert feats.same_features(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)) == "hold the same features"


def test_a_channel_far_larger_than_the_rest_does_not_widen_the_tolerance_of_the_others(tmp_path, monkeypatch):
    # two different videos whose features hold, beside embeddings of 0 to 1, one channel in other units alike in both
    # (a frame width of 1920 written as a feature): a thousandth of the file's largest value, 1.9, let every other
    # channel differ by that much, and they were "the same features up to float rounding"
    rng = np.random.default_rng(9)
    videos = []
    for name in ("one", "other"):
        values = rng.uniform(0.0, 1.0, (30, 16)).astype(np.float32)
        values[:, 0] = 1920.0
        videos.append(tmp_path / f"{name}.npy")
        np.save(videos[-1], values)
    assert feats.same_features(*(feats.feature_fingerprint(path) for path in videos)) is None
    # a copy is still one: stored float16, or extracted again in another runtime with a channel near zero (a nearly
    # dead unit, whose rounding is not relative to its values)
    original = np.load(videos[0])
    original[:, 5] = rng.uniform(0.0, 1e-4, 30)
    np.save(videos[0], original)
    again = original + (2e-6 * rng.standard_normal(original.shape)).astype(np.float32)
    for name, copy in (("half", original.astype(np.float16)), ("again", again)):
        videos.append(tmp_path / f"{name}.npy")
        np.save(videos[-1], copy)
    assert feats.repeated_feature_files(videos, {index: (30, 16) for index in range(4)}) == [
        (0, 2, "hold the same features up to float rounding"), (0, 3, "hold the same features up to float rounding")]
    # nor does it make every pair of many such files a candidate, compared whole (quadratic: 4000 files, 3 minutes)
    for index in range(120):
        values = rng.uniform(0.0, 1.0, (30, 16)).astype(np.float32)
        values[:, 0] = 1920.0
        videos.append(tmp_path / f"more{index}.npy")
        np.save(videos[-1], values)
    compared = []
    monkeypatch.setattr(feats, "same_features",
                        lambda *pair, real=feats.same_features: compared.append(1) or real(*pair))
    assert len(feats.repeated_feature_files(videos, {index: (30, 16) for index in range(len(videos))})) == 2
    assert len(compared) == 2


def test_repeated_feature_files_finds_links_and_copies_reading_only_files_of_one_shape(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    names = ("a", "b", "a_copy", "a_link", "short", "b_copy", "a_again")
    files = [tmp_path / f"{name}.npy" for name in names]
    a, b = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    again = a * (1 + 1e-5 * rng.standard_normal(a.shape))  # the video extracted again: rounding apart
    for path, array in zip(files, (a, b, a, None, a[:10], b, again)):
        if array is not None:
            np.save(path, array.astype(np.float32))
    files[3].symlink_to(files[0])
    read = []
    monkeypatch.setattr(feats, "feature_fingerprint",
                        lambda path, real=feats.feature_fingerprint: read.append(path) or real(path))
    shapes = {0: (20, 3), 1: (20, 3), 2: (20, 3), 3: (20, 3), 4: (10, 3)}  # the last two have none: left out
    assert feats.repeated_feature_files(files, shapes) == [(0, 2, "hold the same features"), (0, 3, "are one file")]
    assert read == files[:3]  # the link is known by the file it is, the shorter file by its shape
    shapes[5] = shapes[6] = (20, 3)
    assert feats.repeated_feature_files(files, shapes)[-2:] == [
        (1, 5, "hold the same features"), (0, 6, "hold the same features up to float rounding")]
    shapes[4] = (20, 3)  # a file whose shape changed since it was read: the others are still compared
    assert len(feats.repeated_feature_files(files, shapes)) == 4
    for name in ("empty", "empty_too"):  # no rows: an IndexError from the probes (callers refuse such files first)
        np.save(tmp_path / f"{name}.npy", np.zeros((0, 3), np.float32))
    empty = [tmp_path / "empty.npy", tmp_path / "empty_too.npy"]
    assert feats.repeated_feature_files(empty, {0: (0, 3), 1: (0, 3)}) == [(0, 1, "hold the same features")]


def test_videos_that_open_on_the_same_frames_are_not_compared_whole_pair_by_pair(tmp_path, monkeypatch):
    # clips of one length that all open on a black screen (the same first rows): the first values of their
    # fingerprints agree, and every pair of them (7140 here) was compared whole, a quadratic cost (a minute for 4000
    # videos of the demo's width)
    rng = np.random.default_rng(7)
    files = []
    for index in range(120):
        values = rng.standard_normal((40, 64)).astype(np.float32)
        values[:3] = 0.0
        files.append(tmp_path / f"clip{index}.npy")
        np.save(files[-1], values)
    np.save(tmp_path / "clip9_half.npy", np.load(files[9]).astype(np.float16))  # one stored again, float16
    files.append(tmp_path / "clip9_half.npy")
    compared = []
    monkeypatch.setattr(feats, "same_features",
                        lambda *pair, real=feats.same_features: compared.append(1) or real(*pair))
    repeats = feats.repeated_feature_files(files, {index: (40, 64) for index in range(len(files))})
    assert repeats == [(9, 120, "hold the same features up to float rounding")] and len(compared) == 1


def _every_pair_compared(fingerprints: list[np.ndarray]) -> list[tuple[int, int, str]]:
    """`repeated_feature_files`' answer as comparing every pair in file order gives it."""
    first_of: dict[int, int] = {}
    repeats = []
    for position, fingerprint in enumerate(fingerprints):
        for earlier in range(position):
            how = feats.same_features(fingerprints[earlier], fingerprint)
            if how is not None:
                first_of[position] = first_of.get(earlier, earlier)
                repeats.append((first_of[position], position, how))
                break
    return repeats


def test_the_copies_found_are_those_every_pair_compared_finds(tmp_path):
    # videos of one length at scales 1e-3 to 1e3 (copies at a smaller scale found from the larger), mostly zero
    # values (a ReLU's), copies float16 or rounding apart before or after their original, a copy of a copy, a file
    # with an infinity: the candidates are narrowed, the answer is that of comparing every pair
    rng = np.random.default_rng(8)
    arrays = []
    for index in range(150):
        values = np.maximum(rng.standard_normal((20, 24)), 0.0) * 10.0 ** rng.integers(-3, 4)
        if index % 7 == 3:  # a copy of an earlier file, or one a later file will be copied from
            source = arrays[int(rng.integers(len(arrays)))]
            values = source.astype(np.float16).astype(np.float64) if index % 2 else source * (1 + 1e-6)
        if index % 11 == 5:  # not a copy: another video, within twice the tolerance of one
            values = arrays[-1] + 2 * feats.COPY_TOLERANCE * np.abs(arrays[-1]).max()
        arrays.append(values)
    arrays[40] = arrays[41].copy()
    arrays[40][5, 5] = np.inf
    files = []
    for index, values in enumerate(arrays):
        files.append(tmp_path / f"v{index}.npy")
        np.save(files[-1], values.astype(np.float32))
    fingerprints = [feats.feature_fingerprint(path) for path in files]
    expected = _every_pair_compared(fingerprints)
    assert len(expected) > 15
    assert feats.repeated_feature_files(files, {index: (20, 24) for index in range(len(files))}) == expected


def test_the_copy_search_holds_the_probe_values_of_each_file_not_its_whole_fingerprint(tmp_path, monkeypatch):
    # every file's whole fingerprint (16 rows x C) was held through the search: 90 KB a file at 1408 channels, 720 MB
    # for 8000 videos of one length. Now only a sample's are (here 8), the rest read again for pairs whose probes agree
    rng = np.random.default_rng(11)
    arrays = []
    for index in range(60):
        values = np.maximum(rng.standard_normal((20, 24)), 0.0) * 10.0 ** rng.integers(-2, 3)
        if index % 6 == 4:  # copies of files in and out of the sample, float16 or a rounding apart
            source = arrays[int(rng.integers(len(arrays)))]
            values = source.astype(np.float16).astype(np.float64) if index % 4 else source * (1 + 1e-6)
        arrays.append(values)
    arrays[30] = arrays[31].copy()
    arrays[30][3, 3] = np.nan
    files = []
    for index, values in enumerate(arrays):
        files.append(tmp_path / f"v{index}.npy")
        np.save(files[-1], values.astype(np.float32))
    expected = _every_pair_compared([feats.feature_fingerprint(path) for path in files])
    assert len(expected) >= 9
    alive, most_alive = [], []

    def counted(path, real=feats.feature_fingerprint):
        fingerprint = real(path)
        alive.append(weakref.ref(fingerprint))
        most_alive.append(sum(held() is not None for held in alive))
        return fingerprint

    monkeypatch.setattr(feats, "PROBE_SAMPLE", 8)
    monkeypatch.setattr(feats, "feature_fingerprint", counted)
    assert feats.repeated_feature_files(files, {index: (20, 24) for index in range(len(files))}) == expected
    assert max(most_alive) <= 8 + 3  # the sample's, the file just read, a pair compared whole
    assert len(most_alive) < 2 * len(files)  # each file read once, and again only where its probes agree


def test_a_data_set_root_given_for_its_features_names_the_subfolders_that_hold_them(tmp_path, monkeypatch):
    # `mgrec detect RUN ~/.cache/mgrec/demo` (the data set, not its features/) said only "folder holds no feature
    # files"; now the subfolders holding some are named, to give instead
    for sub, names in {"features": ("a.npy", "a.json", "b.npz"), "streams": ("c.npy",), "docs": ("x.txt",),
                       ".cache": ("d.npy",)}.items():
        (tmp_path / sub).mkdir()
        for name in names:
            (tmp_path / sub / name).write_bytes(b"x")
    with pytest.raises(InputError) as error:
        list_feature_files(tmp_path)
    assert str(error.value) == (
        f"{tmp_path}: folder holds no feature files (.npy, .npz), but its subfolders {tmp_path}/features (2), "
        f"{tmp_path}/streams (1) hold some: give one of them (folders are not searched deeper)")
    (tmp_path / "streams" / "c.npy").unlink()
    with pytest.raises(InputError, match=r"but its subfolder .*/features \(2\) holds some: give that folder"):
        list_feature_files(tmp_path)
    with pytest.raises(InputError, match=r"folder holds no feature files \(\.npy, \.npz\)$"):
        list_feature_files(tmp_path / "docs")
    # a subfolder this user cannot read (lost+found; root reads all, so its listing is made to fail) holds nothing to
    # give: it was a PermissionError
    (tmp_path / "lost+found").mkdir()
    listing = Path.iterdir

    def refusing(self):
        if self.name == "lost+found":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refusing)
    with pytest.raises(InputError, match=r"but its subfolder .*/features \(2\) holds some: give that folder"):
        list_feature_files(tmp_path)


def test_a_video_under_a_name_mgrec_does_not_read_as_one_is_said_to_be_one_not_broken_features(tmp_path, make_video):
    # `mgrec detect RUN clip.mod`: `cannot read features (truncated or corrupt file?): not a .npy or .npz file`
    video = make_video(tmp_path / "clip.mkv", [np.zeros((32, 32, 3), np.uint8)] * 4).rename(tmp_path / "clip.mod")
    with pytest.raises(InputError) as error:
        feats.load_features(video)
    assert str(error.value).startswith(f"{video}: a video (Matroska / WebM) under a name mgrec does not read as one")
    # a damaged feature file stays one, whatever its bytes look like to FFmpeg
    damaged = tmp_path / "v.npy"
    damaged.write_bytes(video.read_bytes())
    with pytest.raises(InputError, match=r"v.npy: cannot read features \(truncated or corrupt file\?\): not a .npy"):
        feats.load_features(damaged)


def test_given_array_takes_a_torch_tensor_as_its_values_and_names_what_it_refuses():
    import torch

    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert feats.given_array(rows, "features", "an array") is rows  # an array as it is, not copied
    for tensor in (torch.from_numpy(rows).requires_grad_(), torch.from_numpy(rows).bfloat16()):
        taken = feats.given_array(tensor, "features", "an array")
        assert isinstance(taken, np.ndarray) and taken.dtype == np.float32 and np.array_equal(taken, rows)
    assert feats.given_array(torch.from_numpy(rows).half(), "f", "x").dtype == np.float16  # the checks judge dtypes
    with pytest.raises(InputError, match=r"^features: a torch tensor \(torch.sparse_coo, torch.float32, on cpu\) "
                                         r"that has no plain array of values"):
        feats.given_array(torch.from_numpy(rows).to_sparse(), "features", "an array")
    with pytest.raises(InputError, match=r"^features: expected a \(T, C\) array, got list$"):
        feats.given_array(rows.tolist(), "features", "a (T, C) array")


def test_a_run_recipe_that_contradicts_the_runs_config_is_refused_by_every_reader(tmp_path):
    # a run's feature_recipe.json of stride 8 (or dim 64) beside its config's stride 4 (dim 128): an edit, or a recipe
    # copied from another run. evaluate, detect and stream ran (exit 0), and export handed the wrong recipe on in its
    # record, by which the ONNX file's users make its features
    from mgrec.config import Config, DataConfig
    from mgrec.run import RunDir

    config = Config(data=DataConfig(feature_dim=128, stride=4, window=16))
    run = RunDir(tmp_path)
    run.write_config(config)
    right = {"fps": 50.0, "stride": 4, "window": 16, "backbone": "imu-window-v1", "dim": 128, "frames": 100}
    run.recipe_path.write_text(json.dumps(right))
    assert feats.read_run_recipe(run) == right
    feats.check_run_recipe(run.recipe_path, feats.read_sidecar(run.recipe_path), config)
    for key, value, words in (("stride", 8, "stride 8, where config.yaml's data has stride 4"),
                              ("window", 32, "window 32, where config.yaml's data has window 16"),
                              ("dim", 64, "dim 64, where config.yaml's data has feature_dim 128")):
        run.recipe_path.write_text(json.dumps({**right, key: value}))
        with pytest.raises(InputError, match=rf"^{re.escape(str(run.recipe_path))}: {words}: the run was trained"):
            feats.read_run_recipe(run)
        with pytest.raises(InputError, match=re.escape(words)):
            feats.check_run_recipe(run.recipe_path, feats.read_sidecar(run.recipe_path), config)
