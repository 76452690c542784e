"""`mgrec export`: the ONNX file of a run's network detects what the run does, at lengths it was not traced at."""

import dataclasses
import io
import json
import os
import sys

import numpy as np
import pytest
from tests.helpers import train_tiny_run

from mgrec.cli import main
from mgrec.config import PostprocessConfig
from mgrec.errors import InputError
from mgrec.infer.export import FORMAT, OnnxNetwork, export_onnx
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.stream import stream_files
from mgrec.model.dyfadet import DFA_PIECE_STEPS

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


POSTPROCESS = PostprocessConfig(pre_nms_topk=200, max_detections=50)


def export_tiny_run(root, variant: str):
    run, paths, _ = train_tiny_run(root, seed=0, postprocess=POSTPROCESS, variant=variant)
    return run, paths, export_onnx(run, root / "net.onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained run of the demo default's network (ActionFormer's: local attention) and its exported file."""
    return export_tiny_run(tmp_path_factory.mktemp("export"), "actionformer")


def assert_same_detections(own: OfflineDetector, onnx_file, features: np.ndarray, lengths) -> None:
    through_onnx = dataclasses.replace(own, model=OnnxNetwork(onnx_file, threads=1))
    for length in lengths:
        expected, found = (detector.detect(features[:length], "v", fps=25.0) for detector in (own, through_onnx))
        assert len(found) == len(expected) > 0
        in_order = [sorted(ranked, key=lambda d: (d.label, d.start)) for ranked in (expected, found)]
        for a, b in zip(*in_order):
            assert (a.label, a.start_frame, a.end_frame) == (b.label, b.start_frame, b.end_frame)
            assert abs(a.score - b.score) < 1e-5


def test_the_exported_file_detects_what_the_run_detects(exported):
    run, paths, record = exported
    features = np.load(next(paths.features.glob("*.npy")))
    # Traced at 32 steps; 160 and 37 (padded to 40) are lengths it was neither traced nor checked at, and no multiple
    # of the local attention's chunk of 9 steps: exported as -(-T // 9), the chunk count was a floor (ONNX's integer
    # division truncates), and onnxruntime refused every such length.
    assert_same_detections(OfflineDetector.from_run(run, device="cpu", precision="fp32"), record.onnx_path, features,
                           (len(features), 37))


def test_the_papers_network_exports_whole_where_pytorch_runs_it_in_pieces(tmp_path):
    # On the CPU, PyTorch runs the DFA convs of inputs longer than DFA_PIECE_STEPS in pieces, a count that depends on
    # the length; the file holds the plain form, which computes the same at every length.
    run, paths, record = export_tiny_run(tmp_path, "mgrec")
    features = np.tile(np.load(next(paths.features.glob("*.npy"))), (8, 1))  # 1280 steps
    assert len(features) > DFA_PIECE_STEPS
    assert_same_detections(OfflineDetector.from_run(run, device="cpu", precision="fp32"), record.onnx_path, features,
                           (len(features),))


def test_an_averaged_ensemble_exports_as_one_network(exported, tmp_path):
    run, paths, _ = exported
    assert main(["ensemble", str(run), str(run), "--out", str(tmp_path / "averaged"), "--fusion", "outputs"]) == 0
    record = export_onnx(tmp_path / "averaged", tmp_path / "averaged.onnx")
    features = np.load(next(paths.features.glob("*.npy")))
    assert_same_detections(OfflineDetector.from_run(tmp_path / "averaged", device="cpu", precision="fp32"),
                           record.onnx_path, features, (len(features),))


def test_a_stream_through_the_file_emits_what_the_pytorch_stream_emits(exported, capsys):
    run, paths, record = exported
    feature_file = next(paths.features.glob("*.npy"))
    emitted = {}
    for engine, onnx in (("pytorch", None), ("onnxruntime", record.onnx_path)):
        lines = io.StringIO()
        summaries = stream_files(run, [feature_file], out=lines, onnx=onnx)
        assert summaries[0].engine == engine
        emitted[engine] = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert len(emitted["onnxruntime"]) == len(emitted["pytorch"]) > 0
    for a, b in zip(emitted["pytorch"], emitted["onnxruntime"]):
        assert [a[key] for key in ("label", "segment(frames)", "emitted_at")] == [
            b[key] for key in ("label", "segment(frames)", "emitted_at")]
        assert abs(a["score"] - b["score"]) < 1e-5
    assert "(fp32 inference, onnxruntime)" in summaries[0].describe()


def test_detect_through_the_file_writes_what_the_run_detects_and_says_which_engine_ran(exported, tmp_path, capsys):
    run, paths, record = exported
    feature_file = str(next(paths.features.glob("*.npy")))
    written = {}
    for engine, onnx in (("pytorch", []), ("onnxruntime", ["--onnx", str(record.onnx_path)])):
        out = tmp_path / f"{engine}.json"
        assert main(["detect", str(run), feature_file, "--out", str(out), "--all", *onnx]) == 0
        assert ("(fp32 inference, onnxruntime)" in capsys.readouterr().out) == bool(onnx)
        written[engine] = json.loads(out.read_text())
    pytorch, onnxruntime = (list(written[engine]["results"].values())[0] for engine in ("pytorch", "onnxruntime"))
    assert len(onnxruntime) == len(pytorch) > 0
    for a, b in zip(pytorch, onnxruntime):
        assert (a["label"], a["segment(frames)"]) == (b["label"], b["segment(frames)"])
        assert abs(a["score"] - b["score"]) < 1e-5
    recorded = written["onnxruntime"]["mgrec"]
    assert (recorded["engine"], recorded["onnx"]) == ("onnxruntime", str(record.onnx_path.resolve()))
    assert "engine" not in written["pytorch"]["mgrec"]
    # the file's record is no output (written over, the file could no longer be run), nor is a file of other weights
    assert main(["detect", str(run), feature_file, "--out", str(record.record_path), "--onnx",
                 str(record.onnx_path)]) == 2
    assert "would overwrite" in capsys.readouterr().err and json.loads(record.record_path.read_text())["format"]
    other = tmp_path / "other.onnx"
    other.write_bytes(record.onnx_path.read_bytes())
    (tmp_path / "other.json").write_text(json.dumps({**json.loads(record.record_path.read_text()),
                                                     "weights_sha256": "0" * 64}))
    assert main(["detect", str(run), feature_file, "--out", str(tmp_path / "x.json"), "--onnx", str(other)]) == 2
    err = capsys.readouterr().err
    # its record names this run: exported before the run's weights changed, so the advice exports over it
    assert "other.onnx: exported from other weights than" in err and err.rstrip().endswith(f"--out {other}`")
    # exported from another run, or from this run's other checkpoint (`export --checkpoint last`; detect runs best), or
    # a record whose run is no path: the advice names a new file beside it, not the other network's export
    for edit in ({"run": str(tmp_path / "elsewhere")}, {"checkpoint": "last"}, {"run": "a\u0000b"}):
        (tmp_path / "other.json").write_text(json.dumps({**json.loads(record.record_path.read_text()),
                                                         "weights_sha256": "0" * 64, **edit}))
        assert main(["detect", str(run), feature_file, "--out", str(tmp_path / "x.json"), "--onnx", str(other)]) == 2
        assert capsys.readouterr().err.rstrip().endswith(f"--out {tmp_path / (run.resolve().name + '.onnx')}`"), edit


def test_a_file_of_other_weights_is_refused_by_a_stream_of_the_run(exported, tmp_path):
    run, paths, record = exported
    feature_file = next(paths.features.glob("*.npy"))
    other = tmp_path / "other.onnx"
    other.write_bytes(record.onnx_path.read_bytes())
    saved = json.loads(record.record_path.read_text())
    (tmp_path / "other.json").write_text(json.dumps({**saved, "weights_sha256": "0" * 64}))
    with pytest.raises(InputError, match=r"other\.onnx: exported from other weights than .*best\.safetensors"):
        stream_files(run, [feature_file], out=io.StringIO(), onnx=other)
    with pytest.raises(InputError, match=r"--onnx runs the exported network in onnxruntime; --compile"):
        stream_files(run, [feature_file], out=io.StringIO(), onnx=record.onnx_path, compile=True)
    (tmp_path / "other.json").write_text(json.dumps({**saved, "strides": "1,2,4"}))
    with pytest.raises(InputError, match=r"other\.json \[strides\]: expected a list"):
        OnnxNetwork(other)
    (tmp_path / "other.json").write_text(json.dumps({**saved, "strides": [1, 2]}))
    with pytest.raises(InputError, match=r"other\.json \[strides, length_multiple\]: expected the strides 1, 2, 4"):
        OnnxNetwork(other)
    # a file beside the record of another export (a kill between the two writes, one file copied alone)
    (tmp_path / "other.json").write_text(json.dumps(saved))
    other.write_bytes(record.onnx_path.read_bytes()[:-10] + bytes(10))
    with pytest.raises(InputError, match=r"other\.onnx: not the file its record other\.json describes"):
        OnnxNetwork(other)


def test_the_record_says_how_the_run_feeds_the_file_and_reads_it(exported):
    run, _, record = exported
    saved = json.loads(record.record_path.read_text())
    tuned = json.loads((run / "postprocess.json").read_text())
    assert saved["format"] == FORMAT and saved["variant"] == "actionformer"
    assert saved["classes"] == json.loads((run / "classes.json").read_text())
    assert saved["postprocess"]["score_threshold"] == tuned["score_threshold"]
    assert saved["strides"] == [2**level for level in range(record.levels)]
    assert saved["length_multiple"] == record.length_multiple == saved["strides"][-1]
    assert saved["checked"]["largest_difference"] == record.largest_difference < 1e-3
    assert record.onnx_path.stat().st_size > 0 and not list(record.onnx_path.parent.glob("*.data"))  # one file


def test_export_refuses_another_suffix_an_ensemble_of_detections_and_names_the_missing_record(exported, tmp_path):
    run, paths, record = exported
    with pytest.raises(InputError, match=r"--out .*net\.pt: expected a file name ending in \.onnx"):
        export_onnx(run, tmp_path / "net.pt")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(record.onnx_path.read_bytes())
    with pytest.raises(InputError, match=r"lone\.onnx: its record lone\.json is not beside it"):
        OnnxNetwork(lone)
    assert main(["ensemble", str(run), str(run), "--out", str(tmp_path / "fused"), "--fusion", "detections"]) == 0
    with pytest.raises(InputError, match=r"fuses the detections of 2 runs, each with its own network: export each"):
        export_onnx(tmp_path / "fused", tmp_path / "fused.onnx")
    assert not (tmp_path / "fused.onnx").exists()
    # streamed with a member's file: it has no checkpoint of its own (a raw FileNotFoundError before)
    with pytest.raises(InputError, match=r"fuses the detections of 2 runs, each with its own network: give one of"):
        stream_files(tmp_path / "fused", [next(paths.features.glob("*.npy"))], out=io.StringIO(),
                     onnx=record.onnx_path)


def test_export_from_the_command_line_prints_what_it_checked(exported, tmp_path, capsys):
    run, _, _ = exported
    assert main(["export", str(run), "--out", str(tmp_path / "cli.onnx"), "--checkpoint", "last"]) == 0
    printed = capsys.readouterr().out
    assert "cli.onnx" in printed and "checked against PyTorch with onnxruntime at T = " in printed
    assert json.loads((tmp_path / "cli.json").read_text())["checkpoint"] == "last"


def test_export_refuses_outputs_it_cannot_write_as_files_before_the_work(exported, tmp_path, monkeypatch):
    # A folder at FILE.json was refused after the half minute of tracing, once FILE.onnx was written, which stayed
    # without its record; a named pipe at FILE.onnx took the file and hung the check that reads it back.
    run, _, _ = exported

    def loaded(*args, **kwargs):
        raise AssertionError("the network was loaded before the outputs were checked")

    monkeypatch.setattr(OfflineDetector, "from_run", loaded)
    (tmp_path / "record.json").mkdir()
    with pytest.raises(InputError, match=r"cannot write .*record\.json: it is a folder"):
        export_onnx(run, tmp_path / "record.onnx")
    assert not (tmp_path / "record.onnx").exists()
    (tmp_path / "file.onnx").mkdir()
    with pytest.raises(InputError, match=r"cannot write .*file\.onnx: it is a folder"):
        export_onnx(run, tmp_path / "file.onnx")
    os.mkfifo(tmp_path / "pipe.onnx")
    with pytest.raises(InputError, match=r"--out .*pipe\.onnx: .*pipe\.onnx is a pipe or device, not a file"):
        export_onnx(run, tmp_path / "pipe.onnx")


def test_export_replaces_a_json_file_beside_its_name_only_where_it_is_an_export_s_record(exported, tmp_path):
    # `--out features/v.onnx` wrote the record over the video's sidecar `features/v.json`, without a word; the user
    # names FILE.onnx, and FILE.json only follows from it.
    run, paths, record = exported
    sidecar = next(paths.features.glob("*.json"))
    (tmp_path / sidecar.name).write_bytes(sidecar.read_bytes())
    with pytest.raises(InputError, match=rf"--out .*{sidecar.stem}\.onnx: its record is written beside it as "
                                         rf"{sidecar.name}, but .* is not the record of an mgrec export"):
        export_onnx(run, tmp_path / f"{sidecar.stem}.onnx")
    assert (tmp_path / sidecar.name).read_bytes() == sidecar.read_bytes()
    assert not (tmp_path / f"{sidecar.stem}.onnx").exists()
    (tmp_path / "again.json").write_bytes(record.record_path.read_bytes())  # an earlier export's record: replaced
    assert export_onnx(run, tmp_path / "again.onnx").record_path == tmp_path / "again.json"


def test_export_replaces_a_file_at_its_name_only_where_it_is_an_earlier_export_s(exported, tmp_path, capsys):
    # `mgrec export RUN --out model.onnx` over the user's own model.onnx (another exporter's, a quantized copy)
    # replaced it without a word; an earlier export's file, its record beside it, is replaced (even one cut short).
    run, _, earlier = exported
    own = tmp_path / "model.onnx"
    own.write_bytes(b"the user's own network")
    assert main(["export", str(run), "--out", str(own)]) == 2
    assert (f"--out {own}: {own} is there already, without the record model.json that mgrec export writes beside its "
            "file, so it is not an earlier export of mgrec: exporting would replace it; choose another name, or move "
            "that file away") in capsys.readouterr().err
    assert own.read_bytes() == b"the user's own network" and not (tmp_path / "model.json").exists()
    again = tmp_path / "again.onnx"
    again.write_bytes(earlier.onnx_path.read_bytes()[:-10])  # cut short, beside an earlier export's record
    (tmp_path / "again.json").write_bytes(earlier.record_path.read_bytes())
    summary = export_onnx(run, again)
    assert summary.record["onnx_sha256"] == json.loads((tmp_path / "again.json").read_text())["onnx_sha256"]
    assert OnnxNetwork(again).strides == summary.record["strides"]


def test_running_a_file_needs_onnxruntime_alone_and_says_so_where_it_is_missing(exported, tmp_path, monkeypatch):
    # A machine that only streams (onnxruntime, no exporter) was refused `stream --onnx` with "mgrec export needs
    # onnx, onnxscript and onnxruntime (onnxscript is not installed)".
    run, paths, record = exported
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    summaries = stream_files(run, [next(paths.features.glob("*.npy"))], out=io.StringIO(), onnx=record.onnx_path)
    assert summaries[0].engine == "onnxruntime"
    with pytest.raises(InputError, match=r"mgrec export needs onnx, onnxscript and onnxruntime \(onnxscript is not"):
        export_onnx(run, tmp_path / "net.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(InputError, match=r"mgrec stream --onnx, OnnxNetwork\) needs onnxruntime \(onnxruntime is not "
                                         r"installed\): pip install onnxruntime"):
        OnnxNetwork(record.onnx_path)


def test_a_record_of_other_classes_for_the_same_weights_is_refused_as_such(exported, tmp_path):
    # It was refused as "exported from other weights than RUN/checkpoints/best.safetensors (its record names RUN,
    # checkpoint best)": the same weights, and the very run and checkpoint named.
    run, paths, record = exported
    (tmp_path / "net.onnx").write_bytes(record.onnx_path.read_bytes())
    saved = json.loads(record.record_path.read_text())
    (tmp_path / "net.json").write_text(json.dumps({**saved, "classes": saved["classes"][::-1]}))
    with pytest.raises(InputError, match=r"net\.json \[classes\]: .*, but .*classes\.json holds .*, for the same "
                                         r"weights \(the record edited, or the run's classes changed since\?\)"):
        stream_files(run, [next(paths.features.glob("*.npy"))], out=io.StringIO(), onnx=tmp_path / "net.onnx")


def test_onnx_names_that_are_not_the_file_are_told_for_what_they_are(exported, tmp_path):
    # The record given for the file was refused as "not the file its record net.json describes", with the advice to
    # export to --out net.json, which export refuses; the name without its suffix and a folder as "no such ONNX file".
    run, paths, record = exported
    feature_file = next(paths.features.glob("*.npy"))
    for given in (record.record_path, record.onnx_path.with_suffix("")):
        with pytest.raises(InputError, match=rf"{given.name}: expected the \.onnx file of mgrec export \(FILE\.onnx, "
                                             rf"its record FILE\.json beside it\); .*net\.onnx is there"):
            stream_files(run, [feature_file], out=io.StringIO(), onnx=given)
    (tmp_path / "folder.onnx").mkdir()
    with pytest.raises(InputError, match=r"folder\.onnx: a folder, not a file of mgrec export$"):
        OnnxNetwork(tmp_path / "folder.onnx")
    with pytest.raises(InputError, match=r"gone\.onnx: no such file or folder \(mgrec export RUN --out gone\.onnx"):
        OnnxNetwork(tmp_path / "gone.onnx")


def test_a_malformed_feature_recipe_is_refused_before_the_tracing_not_copied_into_the_record(exported, tmp_path,
                                                                                             monkeypatch):
    # A run whose feature_recipe.json says `"fps": "x"` (which `detect` refuses by key) was exported without a word,
    # the recipe copied into the record as the run's; read unchecked by `read_json`.
    import shutil

    import torch

    run, _, _ = exported
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    recipe = json.loads((broken / "feature_recipe.json").read_text())
    (broken / "feature_recipe.json").write_text(json.dumps({**recipe, "fps": "x"}))

    def traced(*args, **kwargs):
        raise AssertionError("the network was traced before the run's recipe was read")

    monkeypatch.setattr(torch.onnx, "export", traced)
    with pytest.raises(InputError, match=r"feature_recipe\.json \[fps\]: expected a positive number of frames per "
                                         r"second.*got 'x'"):
        export_onnx(broken, tmp_path / "net.onnx")
    assert not (tmp_path / "net.onnx").exists() and not (tmp_path / "net.json").exists()


def test_a_file_name_linked_to_its_own_record_is_refused_before_the_work(tmp_path, monkeypatch):
    # `net.onnx -> net.json` (a link left from another layout): the network was written through the link into net.json,
    # then the record over it; both were reported written, and the network was lost
    def loaded(*args, **kwargs):
        raise AssertionError("the network was loaded before the outputs were checked")

    monkeypatch.setattr(OfflineDetector, "from_run", loaded)
    record = tmp_path / "net.json"
    record.write_text(json.dumps({"format": FORMAT}))  # an earlier export's record, which an export may replace
    (tmp_path / "net.onnx").symlink_to("net.json")
    with pytest.raises(InputError, match=r"--out .*net\.onnx: it and its record net\.json are one file "
                                         r"\(.*net\.json\), through a symbolic link"):
        export_onnx(tmp_path / "run", tmp_path / "net.onnx")
    assert json.loads(record.read_text()) == {"format": FORMAT}


@pytest.mark.parametrize(("path", "threads", "message"), [
    (None, None, r"^OnnxNetwork: path: expected a path \(str or pathlib.Path\), got None$"),
    (5, None, r"^OnnxNetwork: path: expected a path \(str or pathlib.Path\), got 5$"),
    ("net.onnx", 0, r"^threads: expected a whole number of threads, 1 or more .*, got 0$"),
    ("net.onnx", "2", r"^threads: expected a whole number of threads, 1 or more .*, got '2'$"),
    ("net.onnx", True, r"^threads: expected a whole number of threads, 1 or more .*, got True$"),
])
def test_onnx_network_names_a_path_or_thread_count_of_the_wrong_kind(tmp_path, path, threads, message):
    # before: pathlib's raw TypeError for None or 5; threads=0 silently took torch's setting, "2" a raw error
    with pytest.raises(InputError, match=message):
        OnnxNetwork(path if path is None or path == 5 else tmp_path / path, threads=threads)
    with pytest.raises(InputError, match=message):
        OnnxNetwork.detector(tmp_path / "not-a-run", path if path is None or path == 5 else tmp_path / path,
                             threads=threads)


def test_a_file_name_that_is_the_suffix_alone_is_said_so(tmp_path, capsys):
    # `--out .onnx` was refused as "expected a file name ending in .onnx" (its record: .onnx.json), of a name that ends
    # so: `Path(".onnx").suffix` is "", a hidden file's name with no stem; `--onnx .onnx` was told the same
    from tests.infer.test_detect import make_random_run

    run = make_random_run(tmp_path, input_dim=8)  # refused before its network is read
    said = r"'\.(?i:onnx)' is the suffix alone, no name before it \(a hidden file's name, which has no suffix"
    for name in (".onnx", "sub/.ONNX"):
        with pytest.raises(InputError, match=rf"--out .*{said}.*; name the file, e\.g\. .*model\.onnx$"):
            export_onnx(run, tmp_path / name)
    assert main(["export", str(run), "--out", str(tmp_path / ".onnx")]) == 2
    assert f"name the file, e.g. {tmp_path / 'model.onnx'}" in capsys.readouterr().err
    (tmp_path / ".onnx").write_bytes(b"")
    with pytest.raises(InputError, match=said):
        OnnxNetwork(tmp_path / ".onnx")
