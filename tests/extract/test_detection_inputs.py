"""What `detect` and `stream` read besides the files given: an ensemble member's folder from --member, a member's
layout in a kept folder, and the folders a run of several streams reads (`mgrec.extract.detection_inputs`). Making
features of videos is tested through the command line (tests/infer/test_detect.py, test_fused_ensemble.py)."""

import json
from pathlib import Path

import pytest

from mgrec.errors import InputError
from mgrec.extract.detection_inputs import feature_folders_read, member_folders_given, member_layout


def two_stream_run(folder, tmp_path):
    """A run of an rgb and a pose stream: its config.yaml alone, which is all that is read of it here."""
    folder.mkdir()
    streams = [{"name": name, "features": str(tmp_path / name), "feature_dim": 4, "stride": 4, "window": 16}
               for name in ("rgb", "pose")]
    (folder / "config.yaml").write_text(json.dumps({"data": {"streams": streams}}), encoding="utf-8")
    return folder


def detection_ensemble(folder, members):
    """A detection-level ensemble's run.json and members/<m>/ folders: what reading its members' count asks."""
    (folder / "members").mkdir(parents=True)
    for member in range(members):
        (folder / "members" / str(member)).mkdir()
    block = {"members": members, "fusion": "detections", "sources": [f"run{m}" for m in range(members)]}
    (folder / "run.json").write_text(json.dumps({"format_version": 3, "ensemble": block}), encoding="utf-8")
    return folder


def test_a_run_of_several_streams_reads_its_configs_folders_or_those_given(tmp_path):
    run = two_stream_run(tmp_path / "run", tmp_path)
    for name in ("rgb", "pose", "pose2"):
        (tmp_path / name).mkdir()
    assert feature_folders_read(run, [], None) == [tmp_path / "pose"]  # the grid stream's files are the inputs
    assert feature_folders_read(run, [f"pose={tmp_path / 'pose2'}"], None) == [tmp_path / "pose2"]
    (tmp_path / "pose").rmdir()
    assert feature_folders_read(run, [], None) == []  # a folder that is not there holds nothing to replace


def test_member_folders_are_members_1_and_up_of_a_detection_level_ensemble(tmp_path):
    ensemble = detection_ensemble(tmp_path / "ens", members=3)
    assert member_folders_given(ensemble, []) is None
    assert member_folders_given(ensemble, ["2=b", "1=a"]) == {2: Path("b"), 1: Path("a")}
    assert member_folders_given(ensemble, ["1=~/a"]) == {1: Path.home() / "a"}  # as every path argument
    refusals = {"0=a": "member 0 reads the files given", "3=a": "expected M=FOLDER, M a member of",
                "1": "expected M=FOLDER", "x=a": "expected M=FOLDER", "1=": "expected M=FOLDER"}
    for item, said in refusals.items():
        with pytest.raises(InputError, match=said):
            member_folders_given(ensemble, [item])
    with pytest.raises(InputError, match="member 1 is given twice"):
        member_folders_given(ensemble, ["1=a", "1=b"])
    # digits str.isdigit takes but int() does not ('²'), other scripts' digits, an index of 5000 digits (past Python's
    # limit on int conversion): each was a raw ValueError traceback
    for index in ("\u00b2", "\u0661", "9" * 5000, "1 ", "+1", "-1"):
        with pytest.raises(InputError, match="expected M=FOLDER, M a member of"):
            member_folders_given(ensemble, [f"{index}=a"])
    assert member_folders_given(ensemble, ["01=a"]) == {1: Path("a")}
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputError, match="is no detection-level ensemble"):
        member_folders_given(plain, ["1=a"])


def test_a_member_of_several_streams_reads_grid_and_stream_folders_where_kept_so(tmp_path):
    member = two_stream_run(tmp_path / "member", tmp_path)
    kept = tmp_path / "kept"
    kept.mkdir()
    assert member_layout(member, kept) == (kept, {})  # no grid/ there: the folder holds the grid stream's files
    (kept / "grid").mkdir()
    assert member_layout(member, kept) == (kept / "grid", {})  # pose/ absent: read from the member's config
    (kept / "pose").mkdir()
    assert member_layout(member, kept) == (kept / "grid", {"pose": kept / "pose"})
    single = tmp_path / "single"
    single.mkdir()
    (single / "config.yaml").write_text(json.dumps({"data": {"features": "f", "feature_dim": 4}}), encoding="utf-8")
    assert member_layout(single, kept) == (kept, {})  # one stream: its files in the folder, grid/ or not
