"""OfflineDetector's entry points: the fps a caller gives is checked as every sidecar's is, and a feature file's
fps comes from its sidecar, the run's data.fps or the caller, who may not contradict either."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers import one_torch_thread  # noqa: F401 (autouse)

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, to_dict
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.errors import InputError
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.model.detector import build_detector
from mgrec.smg_csv import checked_fps

FPS_ERROR = r"^fps: expected a number of frames per second in \[0\.001, 1000\], got "
BAD_FPS = [0, 0.0, float("inf"), float("-inf"), float("nan"), -30.0, "30", 1e-300, True, 1e9, [30]]



def tiny_detector(fps: float | None = None) -> OfflineDetector:
    torch.manual_seed(0)
    model = ModelConfig(input_dim=16, num_classes=3, embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                        regression_ranges=[[0, 4], [4, 8], [8, 10000]], drop_path=0.0)
    post = PostprocessConfig(max_detections=20)
    config = Config(data=DataConfig(feature_dim=16, stride=4, window=16, max_seq_len=64, fps=fps), model=model,
                    postprocess=post)
    return OfflineDetector(build_detector(model).eval(), config, ["a", "b", "c"], post, Path("run"))


def features(steps: int = 60) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(steps, 16)).astype(np.float32)


@pytest.mark.parametrize("fps", BAD_FPS)
def test_a_bad_fps_is_refused_at_every_entry_point(fps, tmp_path):
    # before: ZeroDivisionError (0, inf), ValueError about int conversion (nan), TypeError ("30"), nothing
    # detected (-30), segments at 1e302 s (1e-300), start=nan from detect(fps=nan)
    detector = tiny_detector()
    path = tmp_path / "clip.npy"
    np.save(path, features())
    for call in (lambda: detector.detect(features(), fps=fps), lambda: detector.detect(path, fps=fps),
                 lambda: detector.grid(fps), lambda: checked_fps(fps)):
        with pytest.raises(InputError, match=FPS_ERROR):
            call()
    with pytest.raises(InputError, match=r"^--fps: expected a number of frames per second in \[0\.001, 1000\]"):
        checked_fps(fps, "--fps")


def test_good_fps_values_pass_as_floats():
    assert checked_fps(None) is None
    assert checked_fps(30) == 30.0 and isinstance(checked_fps(30), float)
    assert checked_fps(np.float32(29.97)) == pytest.approx(29.97)
    assert checked_fps(0.001) == 0.001 and checked_fps(1000) == 1000.0


def test_a_file_takes_its_fps_from_its_sidecar_the_run_or_the_caller(tmp_path):
    detector = tiny_detector()
    rows = features()
    bare = tmp_path / "bare" / "clip.npy"  # sidecars are optional
    bare.parent.mkdir()
    np.save(bare, rows)
    with pytest.raises(InputError, match=r"bare/clip\.npy: the features' fps is unknown: pass the video's frame rate "
                                         r"with --fps \(fps= in Python\), or put the features' sidecar clip\.json"):
        detector.detect(bare)
    assert detector.detect(bare, fps=25.0) == detector.detect(rows, video_id="clip", fps=25.0)

    clip = tmp_path / "clip.npy"
    write_features(clip, rows, FeatureSidecar(fps=25.0, stride=4, window=16, backbone="t", dim=16, frames=None))
    assert detector.file_fps(clip) == detector.file_fps(clip, 25.0) == 25.0
    # before, the given fps silently replaced the sidecar's (and 0 silently fell back to it)
    with pytest.raises(InputError, match=r"clip\.json: the sidecar says fps 25, but fps 30: which is the video's\?"):
        detector.detect(clip, fps=30.0)
    with pytest.raises(InputError, match=r"clip\.json: the sidecar says fps 25, but --fps 30"):
        detector.file_fps(clip, 30.0, what="--fps")
    with pytest.raises(InputError, match=FPS_ERROR):
        detector.detect(clip, fps=0)

    # a run that places every step by its data.fps: the caller may repeat it, not contradict it
    placed = tiny_detector(fps=25.0)
    assert placed.file_fps(bare) is None and placed.file_fps(bare, 25.0) == 25.0
    with pytest.raises(InputError, match=r"^--fps 50 contradicts the run's data\.fps 25 \(run/config\.yaml\)"):
        placed.file_fps(bare, 50.0, what="--fps")
    # the same for an array and a stream in Python (before, the run's data.fps won without a word)
    assert placed.detect(rows, fps=25.0) == placed.detect(rows)
    with pytest.raises(InputError, match=r"^fps 50 contradicts the run's data\.fps 25"):
        placed.detect(rows, fps=50.0)
    with pytest.raises(InputError, match=r"^fps 50 contradicts the run's data\.fps 25"):
        OnlineDetector(placed, fps=50.0)
    # a missing file is the loader's to report
    with pytest.raises(InputError, match=r"nope\.npy"):
        detector.detect(tmp_path / "nope.npy")


def test_a_bad_fps_is_refused_for_an_ensemble_of_detections_too():
    detector = tiny_detector()
    fused = replace(detector, model=None, members=[detector, detector])
    with pytest.raises(InputError, match=FPS_ERROR):
        fused.detect(features(), fps=float("nan"))


def test_an_array_given_in_python_passes_what_a_feature_file_passes():
    # before: an empty array a torch RuntimeError, an integer one accepted, one NaN blamed on "the run's
    # weights" (a training that diverged), a list a TypeError
    detector = tiny_detector(fps=25.0)
    rows = features()
    bad = rows.copy()
    bad[7, 3] = np.nan
    cases = [
        (rows[:0], r"^features: feature array is empty, shape \(0, 16\)$"),
        (rows.astype(np.int64), r"^features: expected float16/float32/float64 features, found dtype int64$"),
        (bad, r"^features: 1 NaN/Inf value\(s\), the first at \[t=7, c=3\]$"),
        (rows[:, :5], r"^features: expected feature dimension 16 \(data.feature_dim\), found 5$"),
        (rows.tolist(), r"^features: expected a \(T, C\) numpy array or a feature file's path, got list$"),
    ]
    for array, expected in cases:
        with pytest.raises(InputError, match=expected):
            detector.detect(array)
    with pytest.raises(InputError, match=r"^inputs: feature array is empty"):
        detector.detect_inputs(rows[:0])
    with pytest.raises(InputError, match=r"^inputs: 1 NaN/Inf value"):
        detector.detect_inputs(bad)
    assert detector.detect(rows.astype(np.float16)) == detector.detect(rows.astype(np.float16).astype(np.float32))


def test_the_python_api_refuses_what_it_cannot_read_right():
    """A masked array passed its check with a NaN under the mask (every later detection then failed, blaming the
    weights); detect_read took ints, a 1-D row or a torch tensor into deep tracebacks or other detections;
    hard_set indexed per-class bars by another run's label ids and took a NaN threshold as 'keep nothing'."""
    detector = tiny_detector(fps=10.0)
    rows = features()
    masked = np.ma.masked_invalid(np.where(np.arange(60)[:, None] == 3, np.nan, rows).astype(np.float32))
    with pytest.raises(InputError, match=r"a masked array \(numpy.ma\); mgrec reads every value"):
        detector.detect(masked)
    with pytest.raises(InputError, match=r"a numpy.matrix, a subclass of numpy.ndarray with arithmetic of its own"):
        detector.detect(np.asmatrix(rows))  # its `*` is a matrix product: a ValueError deep in the normalisation
    for bad in (rows.astype(np.int64), rows[0], np.zeros((0, 16), np.float32), masked):
        with pytest.raises(InputError, match="detect_read takes a"):
            detector.detect_read(bad, None, None)
    ranked = detector.detect(rows)
    assert detector.detect_read(rows, None, None) == ranked
    for threshold in (float("nan"), "0.5", True):
        with pytest.raises(InputError, match="threshold: expected a finite number"):
            detector.hard_set(ranked, threshold)
    with pytest.raises(InputError, match="label_id 7 / label 'zzz' is not a class of this run"):
        detector.hard_set([replace(ranked[0], label_id=7, label="zzz")])
    assert detector.hard_set(ranked, np.float32(0.0)) == ranked


def test_a_json_file_given_as_features_is_named_as_one_not_read_as_its_own_sidecar(tmp_path):
    """`mgrec detect RUN annotations.json` (or `stream`): the file was read as the sidecar of itself, and refused as
    `annotations.json [version]: unknown key; valid keys: fps, stride, window, ...`."""
    detector = tiny_detector(fps=10.0)
    (tmp_path / "annotations.json").write_text('{"version": "1.0", "database": {}}')
    with pytest.raises(InputError, match=r"annotations.json: a JSON file, not features \(a .npy or .npz array of "
                                         r"shape \(T, C\)\); no annotations.npy or .npz is beside it$"):
        detector.detect(tmp_path / "annotations.json")
    np.save(tmp_path / "annotations.npy", features())  # a sidecar given for its array still names the array
    with pytest.raises(InputError, match=r"is the sidecar of the features annotations.npy .*give .*annotations.npy$"):
        detector.detect(tmp_path / "annotations.json")
    (tmp_path / "x.JSON").write_text('{"version": "1.0", "database": {}}')  # the ending in capitals: the same rules
    with pytest.raises(InputError, match=r"x.JSON: a JSON file, not features"):
        detector.detect(tmp_path / "x.JSON")
    np.save(tmp_path / "x.npy", features())
    with pytest.raises(InputError, match=r"x.JSON: is the sidecar of the features x.npy"):
        detector.detect(tmp_path / "x.JSON")


def test_a_feature_prefix_names_the_video_after_it_and_two_files_of_one_video_are_refused(tmp_path):
    """ActionFormer's file_prefix (`v_<id>.npy`, its ActivityNet features): the video is the id after it, so
    detections and outputs match annotations that name `<id>`."""
    from mgrec.infer.detect import distinct_video_ids

    detector = tiny_detector(fps=10.0)
    detector.config.data.feature_prefix = "v_"
    np.save(tmp_path / "v_abc.npy", features())
    assert {d.video_id for d in detector.detect(tmp_path / "v_abc.npy")} == {"abc"}
    np.save(tmp_path / "abc.npy", features())  # a file without the prefix is the video of its whole name
    np.save(tmp_path / "v_.npy", features())  # the prefix alone: no id after it
    assert distinct_video_ids([tmp_path / "v_.npy"], "v_") == {tmp_path / "v_.npy": "v_"}
    with pytest.raises(InputError, match=r"abc.npy are both video 'abc'; one output would silently replace"):
        distinct_video_ids([tmp_path / "v_abc.npy", tmp_path / "abc.npy"], "v_")


def test_one_feature_file_reached_twice_is_one_input(tmp_path):
    """`detect RUN FOLDER FOLDER/x.npy` (a shell glob's slip) refused x.npy as two videos of one id."""
    from mgrec.infer.offline import feature_files

    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", features())
    assert feature_files([tmp_path, tmp_path / "a.npy", str(tmp_path / "b.npy"), tmp_path / "." / "b.npy"]) == [
        tmp_path / "a.npy", tmp_path / "b.npy"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.npy").symlink_to(tmp_path / "a.npy")  # another name of the file: kept, named by it
    (tmp_path / "again").symlink_to(tmp_path / "sub")  # a linked folder leads to the same names
    assert feature_files([tmp_path / "sub", tmp_path / "a.npy", tmp_path / "again" / "a.npy"]) == [
        tmp_path / "sub" / "a.npy", tmp_path / "a.npy"]


def test_hard_set_reads_an_iterator_once_and_a_class_list_names_each_class_once():
    """hard_set's class check looped over its argument, and the threshold then saw an emptied iterator: filter(...)
    gave no detection (a list: all of them). A class named twice made two label ids of one class."""
    detector = tiny_detector(fps=10.0)
    ranked = detector.detect(features())
    assert ranked and detector.hard_set(filter(lambda d: True, ranked), -1e9) == ranked
    assert detector.hard_set(iter(ranked)) == detector.hard_set(ranked)
    with pytest.raises(InputError, match="detections: expected a list of Detection, got a dict"):
        detector.hard_set({"video": ranked})
    with pytest.raises(InputError, match=r"classes\[2\]: class 'a' is listed twice"):
        replace(detector, classes=["a", "b", "a"])


def wrong_arguments() -> list:
    """(argument, value made from a good detector, the message's start): each argument of OfflineDetector(...) of a
    wrong kind. Before, a raw error deep in the detection (AttributeError: 'dict' object has no attribute
    'shifted_passes', torch's TypeError for autocast="bf16", IndexError in hard_set) or nothing at all (a network of 4
    classes labelled by 3 names, a fusion_iou of 2, stream folders of no stream)."""
    def network(**changes):
        return lambda d: build_detector(replace(d.config.model, **changes)).eval()

    def post(**changes):
        return lambda d: replace(d.postprocess, **changes)

    return [
        ("model", lambda d: None,
         r"^model: expected a torch\.nn\.Module \(an mgrec detector: build_detector\(config\.model\), or "
         r"OfflineDetector\.from_run\), got None \(None only beside members, a detection-level ensemble's\)$"),
        ("model", lambda d: d.model.state_dict(), r"^model: expected a torch\.nn\.Module .*, got OrderedDict$"),
        # a module of no detector's contract: AttributeError "'Linear' object has no attribute 'max_div_factor'"
        ("model", lambda d: torch.nn.Linear(16, 3),
         r"^model: expected an mgrec detector \(build_detector\(config\.model\), or a network of its contract, "
         r"docs/contracts\.md: max_div_factor and DetectorOutput\), got a Linear whose max_div_factor is None$"),
        ("model", network(num_classes=4),
         r"^model: expected a network of config\.model\.num_classes=3 classes, got one whose head predicts 4$"),
        ("model", network(input_dim=8, stream_dims=[8]),
         r"^model: expected a network of config\.data\.feature_dim=16 input channels, got one of 8$"),
        ("config", lambda d: to_dict(d.config),
         r"^config: expected an mgrec\.config\.Config \(load_config builds one\), got \{"),
        ("config", lambda d: d.config.model, r"^config: expected an mgrec\.config\.Config .*, got ModelConfig$"),
        ("classes", lambda d: ["a", "b"],
         r"^classes: expected 3 class names \(config\.model\.num_classes\), got 2: \['a', 'b'\]$"),
        ("classes", lambda d: "abc", r"^classes: expected a list of class names, got a str$"),
        ("postprocess", lambda d: {"score_threshold": 0.5},
         r"^postprocess: expected an mgrec\.config\.PostprocessConfig, got a dict; change a loaded one's keys with "
         r"dataclasses\.replace\(detector\.postprocess, KEY=\.\.\.\), which keeps the others$"),
        ("postprocess", lambda d: None,
         r"^postprocess: expected an mgrec\.config\.PostprocessConfig \(config\.postprocess\), got None$"),
        ("postprocess", lambda d: d.config, r"^postprocess: expected .*, got Config$"),
        ("postprocess", post(score_threshold="0.3"),
         r"^postprocess\.score_threshold: expected a finite number, got '0\.3'$"),
        ("postprocess", post(max_detections=0), r"^postprocess\.max_detections: expected a positive number, got 0$"),
        ("postprocess", post(pre_nms_topk=2.5), r"^postprocess\.pre_nms_topk: expected a whole number, got 2\.5$"),
        ("postprocess", post(nms="Soft"),
         r"^postprocess\.nms: expected one of soft, hard, got 'Soft'; did you mean 'soft'\?$"),
        ("postprocess", post(class_thresholds=[0.1, 0.2]),
         r"^postprocess\.class_thresholds: expected one threshold per class of the run's 3, got 2$"),
        ("run_dir", lambda d: None, r"^run_dir: expected the path of the run's directory, got None$"),
        ("run_dir", lambda d: 3, r"^run_dir: expected the path of the run's directory, got 3$"),
        ("checkpoint", lambda d: None, r"^checkpoint: expected a checkpoint's name \(a str: best, last\), got None$"),
        ("threshold_tuned_on", lambda d: 3, r"^threshold_tuned_on: expected None or a split's name \(a str\), got 3$"),
        ("autocast", lambda d: "bf16",
         r"^autocast: expected None \(float32\) or torch\.bfloat16 \(from_run's precision='bf16'\), got 'bf16'$"),
        ("autocast", lambda d: torch.float16,
         r"^autocast: expected None \(float32\) or torch\.bfloat16 .*, got torch\.float16$"),
        ("chunking", lambda d: 8192,
         r"^chunking: expected None \(every video in one pass\) or a Chunking\(steps, overlap\), got 8192$"),
        ("stream_folders", lambda d: ["rgb=x"],
         r"^stream_folders: expected None or a dict of stream name -> folder \(streams of this run: features\), "
         r"got \['rgb=x'\]$"),
        ("stream_folders", lambda d: {"rgb": "x"},
         r"^stream_folders: expected names of this run's streams \(features\), got 'rgb'$"),
        ("stream_folders", lambda d: {"features": 3},
         r"^stream_folders\['features'\]: expected a folder's path, got 3$"),
        ("members", lambda d: [], r"^members: expected None or a non-empty list of OfflineDetector, got \[\]$"),
        ("members", lambda d: d,
         r"^members: expected None or a non-empty list of OfflineDetector, got OfflineDetector$"),
        ("members", lambda d: [d.model], r"^members\[0\]: expected an OfflineDetector, got Detector$"),
        ("members", lambda d: [d, replace(d, classes=["x", "y", "z"])],
         r"^members\[1\]: expected the classes \['a', 'b', 'c'\], got \['x', 'y', 'z'\]$"),
        ("member_folders", lambda d: {1: "pose"},
         r"^member_folders: \S+ is no detection-level ensemble \(it has no members\): leave it out$"),
        ("fusion_iou", lambda d: 0, r"^fusion_iou: expected a tIoU in \(0, 1\], got 0$"),
        ("fusion_iou", lambda d: 2.0, r"^fusion_iou: expected a tIoU in \(0, 1\], got 2\.0$"),
        ("fusion_iou", lambda d: float("nan"), r"^fusion_iou: expected a tIoU in \(0, 1\], got nan$"),
        ("fusion_iou", lambda d: "0.5", r"^fusion_iou: expected a tIoU in \(0, 1\], got '0\.5'$"),
        ("second_opinion", lambda d: 0.5, r"^second_opinion: expected None or a SecondOpinion .*, got 0\.5$"),
        ("run_root", lambda d: 3, r"^run_root: expected None or the run directory's absolute path, got 3$"),
    ]


@pytest.mark.parametrize(("argument", "value", "message"),
                         [pytest.param(*case, id=f"{case[0]}-{index}") for index, case in enumerate(wrong_arguments())])
def test_each_argument_of_the_wrong_kind_is_named(argument, value, message):
    detector = tiny_detector(fps=10.0)
    given = value(detector)
    with pytest.raises(InputError, match=message):
        OfflineDetector(**{**{f.name: getattr(detector, f.name) for f in fields(OfflineDetector) if f.init},
                           argument: given})
    with pytest.raises(InputError, match=message):  # dataclasses.replace checks it too
        replace(detector, **{argument: given})


def test_a_detector_built_from_parts_still_detects_and_takes_paths_as_str():
    detector = tiny_detector(fps=10.0)
    rows = features()
    ranked = detector.detect(rows)
    assert ranked
    built = OfflineDetector(detector.model, detector.config, ("a", "b", "c"), detector.postprocess, "run",
                            checkpoint="last", threshold_tuned_on="val", autocast=None, chunking=None,
                            stream_folders={"features": "elsewhere"}, run_root="/tmp/run")
    assert (built.run_dir, built.run_root, built.stream_folders) == (
        Path("run"), Path("/tmp/run"), {"features": Path("elsewhere")})
    assert built.classes == ["a", "b", "c"] and built.detect(rows) == ranked
    fused = replace(detector, model=None, members=[detector, built], fusion_iou=1)
    assert fused.fusion_iou == 1.0 and isinstance(fused.fusion_iou, float) and fused.detect(rows)
    # a member that reads its own files of each video: a folder per member index, checked against the members
    assert replace(fused, member_folders={1: "pose"}).member_folders == {1: Path("pose")}
    for folders, message in (({2: "pose"}, r"expected member indices 0\.\.1 \(members/<m> of run\), got 2$"),
                             ({True: "pose"}, "got True$"), (["pose"], r"a dict of member index -> folder, got \["),
                             ({0: 3}, r"^member_folders\[0\]: expected a folder's path, got 3$")):
        with pytest.raises(InputError, match=message):
            replace(fused, member_folders=folders)
    with pytest.raises(InputError, match="reads its own feature files .*: give the feature file, not an array"):
        replace(fused, member_folders={1: "pose"}).detect(rows)
    assert replace(detector, postprocess=replace(detector.postprocess, score_threshold=np.float32(0.2),
                                                  class_thresholds=[0.0, 0.0, 0.0])).hard_set(ranked) == ranked


def test_a_detector_made_on_a_relative_run_dir_records_the_folder_it_named_then(tmp_path, monkeypatch):
    """A detection-level ensemble's detector (`fused_ensemble`) and one built in Python on "." kept the relative
    run_dir: predictions files recorded `"run": "runs/e"`, which `mgrec score` read from another folder as
    another run or none (the note that the split scored is the run's training split was skipped)."""
    from mgrec.infer.detect import predictions_info

    monkeypatch.chdir(tmp_path)
    single = tiny_detector()
    fused = OfflineDetector(None, single.config, single.classes, single.postprocess, Path("runs") / "e",
                            members=[single, single])
    here = OfflineDetector(single.model, single.config, single.classes, single.postprocess, ".")
    monkeypatch.chdir(tmp_path.parent)  # read later from elsewhere, as a notebook's os.chdir does
    assert predictions_info(single, ranked=True)["run"] == str(tmp_path.resolve() / "run")
    assert predictions_info(fused, ranked=False)["run"] == str(tmp_path.resolve() / "runs" / "e")
    assert predictions_info(here, ranked=True)["run"] == str(tmp_path.resolve())
    assert fused.run_dir == Path("runs/e")  # as given, for messages


@pytest.mark.parametrize("video_id", [5, ["clip"], "", b"clip", np.str_("")])
def test_a_video_id_of_the_wrong_kind_is_named_by_detect_and_detect_inputs(video_id, tmp_path):
    # before: detect(x, video_id=5) returned detections of video 5 (an int; ["clip"] a list), which save_predictions
    # and score refused far from the call; "" was silently named "video"
    detector = tiny_detector(fps=10.0)
    path = tmp_path / "clip.npy"
    np.save(path, features())
    for call in (lambda: detector.detect(features(), video_id=video_id), lambda: detector.detect(path, video_id),
                 lambda: detector.detect_inputs(features(), video_id=video_id)):
        with pytest.raises(InputError, match=r"^video_id: expected a video id \(a non-empty str, or None\), got "):
            call()
    assert {d.video_id for d in detector.detect(features(), video_id="clip")} == {"clip"}
    assert {d.video_id for d in detector.detect(path)} == {"clip"}


def test_a_member_s_file_of_another_length_is_refused_before_any_member_detects_naming_the_video(tmp_path):
    # three members, member 1 reading its own (truncated) file: every member's network ran over the whole video before
    # the file's length was looked at, and the refusal said "member 1 of run reads video None there" (the id of the
    # last member's input, which was member 2's: the video id given, None)
    detector = tiny_detector(fps=25.0)
    own = tmp_path / "own"
    own.mkdir()
    np.save(tmp_path / "clip.npy", features(60))
    np.save(own / "clip.npy", features(20))
    calls = []
    detector.model.register_forward_hook(lambda *_: calls.append(1))
    fused = replace(detector, model=None, members=[detector, detector, detector], member_folders={1: own})
    said = rf"^{re.escape(str(own / 'clip.npy'))}: member 1 of run reads video 'clip' there, 20 steps "
    with pytest.raises(InputError, match=said):
        fused.detect(tmp_path / "clip.npy")
    assert calls == []  # refused before any network ran
    np.save(own / "clip.npy", features(60))  # one recording: fused as before
    assert fused.detect(tmp_path / "clip.npy") == fused.detect(tmp_path / "clip.npy", video_id="clip") != []
    assert len(calls) == 6 * detector.postprocess.shifted_passes


def test_a_detection_level_ensemble_detects_features_already_read_and_names_what_it_cannot_take():
    # detect_read of an ensemble (its model None) ended in "AttributeError: 'NoneType' object has no attribute
    # 'parameters'", and detect_inputs in a bare ValueError, where every other refusal of the API is an InputError
    detector = tiny_detector(fps=25.0)
    fused = replace(detector, model=None, members=[detector, detector])
    rows = features()
    assert fused.detect_read(rows, "v", None) == fused.detect(rows, "v") != []
    with pytest.raises(InputError, match=r"^inputs: a detection-level ensemble's members may normalise differently: "
                                         r"give it features as read \(detect\)$"):
        fused.detect_inputs(rows, "v")


def test_an_ensemble_given_features_of_the_wrong_kind_says_so_without_blaming_a_member(tmp_path):
    # a list given to an ensemble's detect was refused as "member 0 of run (run/members/0): features: expected ...":
    # the caller's argument, said to be what the ensemble's first member refused
    detector = tiny_detector(fps=25.0)
    fused = replace(detector, model=None, members=[detector, detector])
    for bad in ([[1.0] * 16], None, 3):
        for ensemble in (fused, replace(fused, member_folders={1: tmp_path})):
            said = rf"^features: expected a \(T, C\) numpy array or a feature file's path, got {type(bad).__name__}$"
            with pytest.raises(InputError, match=said):
                ensemble.detect(bad)


def test_a_torch_tensor_gives_the_detections_of_the_same_values_as_an_array():
    # before: detect, detect_inputs and OnlineDetector.push refused a tensor ("got Tensor"), the form a notebook holds
    # features in after its own model; now each takes its values (detached, from any device) as the array of them
    detector = tiny_detector(fps=25.0)
    rows = features()
    tensor = torch.from_numpy(rows.copy()).requires_grad_()
    assert detector.detect(tensor) == detector.detect(rows) != []
    assert detector.detect(tensor.double()) == detector.detect(rows.astype(np.float64))
    assert detector.detect_inputs(tensor) == detector.detect_inputs(rows)
    with pytest.raises(InputError, match=r"^features: expected float16/float32/float64 features, found dtype int64$"):
        detector.detect(torch.ones(60, 16, dtype=torch.int64))  # what the checks refuse of an array, they refuse
    with pytest.raises(InputError, match=r"^features: shape \(16, 60\) looks transposed"):
        detector.detect(tensor.T)

    def stream(chunks):
        online = OnlineDetector(detector, lookahead=0.5)
        emitted = [e for chunk in chunks for e in online.push(chunk)] + online.flush()
        return [(e.detection, e.emitted_at) for e in emitted]

    assert stream(torch.split(tensor, 7)) == stream(np.array_split(rows, range(7, 60, 7)))


def two_stream_detector(tmp_path: Path) -> tuple[OfflineDetector, Path, Path]:
    """A tiny detector of two streams ("rgb" the grid stream, "pose"), and one video's file of each (60 steps at 25
    fps, with sidecars): detector, rgb file, pose file."""
    from tests.helpers import SMALL_MODEL

    from mgrec.config import StreamConfig

    torch.manual_seed(0)
    streams = [StreamConfig(name=name, features=str(tmp_path / name), feature_dim=16, stride=4, window=16)
               for name in ("rgb", "pose")]
    post = PostprocessConfig(max_detections=20)
    config = Config(data=DataConfig(streams=streams, max_seq_len=64), model=ModelConfig(num_classes=3, **SMALL_MODEL),
                    postprocess=post)
    files = []
    for seed, stream in enumerate(streams):
        files.append(tmp_path / stream.name / "clip.npy")
        files[-1].parent.mkdir(parents=True)
        write_features(files[-1], np.random.default_rng(seed).normal(size=(60, 16)).astype(np.float32),
                       FeatureSidecar(fps=25.0, stride=4, window=16, backbone="t", dim=16, frames=None))
    return OfflineDetector(build_detector(config.model).eval(), config, ["a", "b", "c"], post, Path("run")), *files


def test_a_feature_file_replaced_while_detection_reads_it_is_named_not_detected_under_its_name(tmp_path,
                                                                                             monkeypatch):
    """`detect` memory-maps a .npy and reads its rows as the network takes them; a file replaced under the same name
    meanwhile (renamed over it, or `np.save` over it) gave one file's detections under the other's name, exit 0 (of
    the grid stream's file and of another stream's alike). It is now checked once the detections are made, as
    `mgrec stream` checks its files (`check_unchanged`)."""
    import mgrec.infer.offline as offline_module

    detect_video = offline_module.detect_video
    replaced: list[Path] = []

    def replaced_meanwhile(*args, **kwargs):
        detections = detect_video(*args, **kwargs)
        if replaced:  # another program renames another recording's features over the file while it is detected
            target = replaced.pop()
            other = target.with_name("other.npy")
            np.save(other, np.zeros((50, 16), np.float32))
            other.replace(target)
        return detections

    monkeypatch.setattr(offline_module, "detect_video", replaced_meanwhile)
    detector = tiny_detector()
    clip = tmp_path / "clip.npy"
    write_features(clip, features(), FeatureSidecar(fps=25.0, stride=4, window=16, backbone="t", dim=16, frames=None))
    before = clip.stat().st_size
    assert detector.detect(clip)  # left alone: detected
    replaced.append(clip)
    with pytest.raises(InputError) as refused:
        detector.detect(clip)
    after = clip.stat().st_size
    assert str(refused.value) == (
        f"{clip}: changed while it was read ({before:,} bytes when its reading began, {after:,} now, modified since: a "
        "recording or a copy still being written?); its rows are read as detection goes (memory-mapped), so the "
        "detections made under its name may be of the file it replaced, of a part of it, or of two versions of it: "
        "detect it again once it is complete")

    # of several streams: the other stream's file, read from its folder, is checked alike
    streamed, rgb, pose = two_stream_detector(tmp_path / "streams")
    assert streamed.detect(rgb)
    replaced.append(pose)
    with pytest.raises(InputError, match=rf"^{re.escape(str(pose))}: changed while it was read \(.*detect it again "
                                         "once it is complete$"):
        streamed.detect(rgb)
