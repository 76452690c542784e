"""Detection-level ensembles (`mgrec ensemble --fusion detections`): runs with different networks made into
one run that detect, evaluate and report take; one member's ensemble detects what the member detects."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import small_config

from mgrec.cli import main
from mgrec.config import PostprocessConfig, TrainConfig
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.fused_ensemble import make_fused_ensemble
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.model.load import load_run_network
from mgrec.postprocess.detection_fusion import fuse_detections
from mgrec.run import RunDir
from mgrec.train.loop import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An mgrec run and an actionformer run on the same synthetic data: outputs that cannot be averaged."""
    root = tmp_path_factory.mktemp("fused")
    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=5, feature_dim=16, length=160, seed=0,
                                   subsets=("train", "train", "val", "test"))
    trained = []
    for variant in ("mgrec", "actionformer"):
        config = small_config(paths, seed=3, max_seq_len=128, variant=variant,
                              train=TrainConfig(epochs=2, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                                eval_every=1, ema_decay=0.9),
                              postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100))
        trained.append(root / variant)
        train(config, trained[-1], progress=False, log=lambda *_: None)
    return paths, trained


def ensemble_and_a_member_folder(runs, tmp_path):
    """The two runs fused at the detection level, and a folder of member 1's own files of video synthetic_003 (the
    same features, copied)."""
    paths, (a, b) = runs
    out, own = tmp_path / "both", tmp_path / "member1"
    make_fused_ensemble([a, b], out, log=lambda *_: None)
    own.mkdir()
    for name in ("synthetic_003.npy", "synthetic_003.json"):
        (own / name).write_bytes((paths.features / name).read_bytes())
    return out, own


def detector(run_dir):
    return OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")


def test_an_ensemble_of_one_run_detects_and_tunes_what_the_run_does(runs, tmp_path):
    paths, (first, _) = runs
    result = make_fused_ensemble([first], tmp_path / "one", log=lambda *_: None)
    features = paths.features / "synthetic_003.npy"
    assert detector(tmp_path / "one").detect(features) == detector(first).detect(features)  # bit for bit
    tuning = RunDir(tmp_path / "one").read_tuning()
    assert tuning["tuned_on"] == "val" and result.val_metrics["score_threshold"] == tuning["score_threshold"]
    assert tuning["score_threshold"] == pytest.approx(RunDir(first).read_tuning()["score_threshold"])


def test_runs_that_cannot_be_fused_either_get_one_error_not_a_note_first(runs, tmp_path, capsys):
    import shutil

    _, (a, _) = runs
    reversed_classes = Path(shutil.copytree(a, tmp_path / "reversed"))
    classes = json.loads((reversed_classes / "classes.json").read_text())
    (reversed_classes / "classes.json").write_text(json.dumps(classes[::-1]))
    assert main(["ensemble", str(a), str(reversed_classes), "--out", str(tmp_path / "e")]) == 2
    captured = capsys.readouterr()
    assert "fusing detections" not in captured.out and captured.err.startswith("mgrec: error: ")


def test_runs_with_different_networks_are_fused_by_the_cli_and_used_like_a_run(runs, tmp_path, capsys):
    paths, (a, b) = runs
    out = tmp_path / "both"
    assert main(["ensemble", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fusing detections: " in printed and "model.variant" in printed  # auto says why it could not average
    assert RunDir(out).read_ensemble()["fusion"] == "detections"
    # the members are kept whole inside the ensemble
    assert (out / "members" / "1" / "checkpoints" / "best.safetensors").is_file()

    features = paths.features / "synthetic_003.npy"
    fused = detector(out).detect(features)
    assert fused == fuse_detections([detector(a).detect(features), detector(b).detect(features)])
    assert main(["evaluate", str(out), "--device", "cpu", "--no-progress"]) == 0
    scores = json.loads((out / "eval_test.json").read_text())
    assert scores["num_videos"] == 1 and scores["threshold_tuned_on"] == "val"
    assert main(["detect", str(out), str(features), "--out", str(tmp_path / "d.json"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["results"]["synthetic_003"]
    assert main(["report", str(out)]) == 0

    with pytest.raises(InputError, match="stream it with FusedOnlineDetector"):
        OnlineDetector(detector(out), fps=25.0)
    with pytest.raises(InputError, match="it has no single network"):
        load_run_network(RunDir(out))
    with pytest.raises(InputError, match="--checkpoint last does not apply"):
        OfflineDetector.from_run(out, checkpoint="last")
    with pytest.raises(InputError, match="outputs are averaged point by point"):
        from mgrec.train.ensemble import make_ensemble

        make_ensemble([a, b], tmp_path / "averaged", log=lambda *_: None)


def test_an_ensemble_whose_run_json_and_members_disagree_is_refused_not_cut_short(runs, tmp_path):
    # `members: 1` in run.json of a two-member ensemble: detect used member 0 alone without a word.
    import shutil

    _, (a, b) = runs
    out = tmp_path / "both"
    make_fused_ensemble([a, b], out, log=lambda *_: None)
    block = json.loads((out / "run.json").read_text())
    block["ensemble"]["members"] = 1
    (out / "run.json").write_text(json.dumps(block))
    with pytest.raises(InputError, match=r"\[ensemble.members\]: 1, but \[ensemble.sources\] lists 2 run\(s\)"):
        detector(out)
    block["ensemble"]["sources"] = block["ensemble"]["sources"][:1]
    (out / "run.json").write_text(json.dumps(block))
    with pytest.raises(InputError, match=r"\[ensemble.members\]: 1, but .*members holds '0', '1' \(expected the "
                                         r"members 0 to 0\)"):
        detector(out)
    block["ensemble"]["members"] = 2
    block["ensemble"]["sources"] *= 2
    (out / "run.json").write_text(json.dumps(block))
    shutil.rmtree(out / "members" / "1")
    with pytest.raises(InputError, match=r"\[ensemble.members\]: 2, but .*members holds '0' \(expected"):
        detector(out)


def test_a_fused_ensemble_holds_its_members_records_and_refuses_a_member_trained_on_its_val(runs, tmp_path):
    # The members' splits.json were not copied: the ensemble had no record, and was scored on its members' training
    # videos after the splits were redrawn. A member trained on a val video was refused after the folder was written.
    import shutil

    from mgrec.run import join_split_records

    _, (a, b) = runs
    out = tmp_path / "both"
    make_fused_ensemble([a, b], out, log=lambda *_: None)
    ensemble = RunDir(out)
    assert ensemble.read_splits() == join_split_records([RunDir(a).read_splits(), RunDir(b).read_splits()])
    with pytest.raises(InputError, match=r"video\(s\) of split 'test' are videos this run trained on "
                                         r"\('synthetic_000'; .*members/\*/splits.json"):
        ensemble.check_held_out("test", ["synthetic_003", "synthetic_000"])
    (out / "members" / ".DS_Store").write_text("")  # a file the Finder leaves is no member
    assert len(detector(out).members) == 2

    leaky = Path(shutil.copytree(b, tmp_path / "leaky"))
    record = json.loads((leaky / "splits.json").read_text())
    (leaky / "splits.json").write_text(json.dumps({**record, "train": [*record["train"], "synthetic_002"]}))
    with pytest.raises(InputError, match=r"ensemble member .*leaky: 1 video\(s\) of split 'val' are videos this "
                                         r"run trained on .*the ensemble would tune its threshold on them; leave this "
                                         r"member out"):
        make_fused_ensemble([a, leaky], tmp_path / "e", log=lambda *_: None)
    assert not (tmp_path / "e").exists()
    # no val split: nothing to tune on, nothing to check
    RunDir(leaky).check_held_out("", ["synthetic_002"])


def test_members_whose_annotations_are_gone_are_refused_before_anything_is_written(runs, tmp_path):
    # made anyway, with the configured threshold and no check of the members' training videos against val, and a
    # log line that said "no val split"
    import shutil

    _, (a, b) = runs
    moved = []
    for run in (a, b):
        copy = Path(shutil.copytree(run, tmp_path / run.name))
        text = (copy / "config.yaml").read_text()
        annotations = RunDir(run).read_config().data.annotations
        (copy / "config.yaml").write_text(text.replace(annotations, str(tmp_path / "gone" / "annotations.json")))
        moved.append(copy)
    with pytest.raises(InputError, match=r"config.yaml \[data.annotations\]: .*gone/annotations.json not found"):
        make_fused_ensemble(moved, tmp_path / "e", log=lambda *_: None)
    assert not (tmp_path / "e").exists()


def test_detect_never_writes_over_the_feature_files_a_member_or_stream_reads(runs, tmp_path, capsys):
    """`detect ENS v.npy --member 1=FOLDER --out FOLDER/v.json` wrote the results over the sidecar of the member's own
    features of v (which no command could read again); the other streams' folders of a run of several alike."""

    paths, _ = runs
    out, own = ensemble_and_a_member_folder(runs, tmp_path)
    before = {path.name: path.read_bytes() for path in own.iterdir()}
    given = str(paths.features / "synthetic_003.npy")
    for target in ("synthetic_003.json", "synthetic_003.npy"):
        assert main(["detect", str(out), given, "--member", f"1={own}", "--out", str(own / target),
                     "--no-progress"]) == 2
        assert f"would overwrite {own / target} (this command reads it)" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in own.iterdir()} == before
    assert main(["detect", str(out), given, "--member", f"1={own}", "--out", str(own / "new.json"),
                 "--no-progress"]) == 0  # a new file beside them
    from mgrec.extract.detection_inputs import feature_folders_read

    assert feature_folders_read(out, [], {1: own}) == [own]  # the member's folder given, beside the run's none


def test_an_ensemble_streams_each_member_on_its_own_window_and_emits_on_the_fused_hard_set(runs, tmp_path, capsys):
    """`mgrec stream` refused a detection-level ensemble. Each member now sees a window of its own features; each update
    fuses the members' ranked lists of their windows, and the emission rule decides on the ensemble's hard set."""

    from mgrec.infer.online import FusedOnlineDetector
    from mgrec.infer.stream import chunks_of

    paths, (a, b) = runs
    features = np.load(paths.features / "synthetic_003.npy")
    # an ensemble of one run, at the run's own threshold, streams what the run streams, gesture for gesture
    make_fused_ensemble([a], tmp_path / "one", log=lambda *_: None)
    run = detector(a)
    run = dataclasses.replace(run, postprocess=dataclasses.replace(run.postprocess, score_threshold=0.01))
    one = dataclasses.replace(detector(tmp_path / "one"), postprocess=run.postprocess)
    streamed = {}
    for name, online in (("run", OnlineDetector(run, fps=25.0, lookahead=1.0, video_id="v")),
                         ("ensemble", FusedOnlineDetector(one, fps=25.0, lookahead=1.0, video_id="v"))):
        streamed[name] = [e.detection for e in online.run(chunks_of(features, 5))]
    assert streamed["ensemble"] == streamed["run"] and streamed["run"]
    # two members: by the command, a member's files from its own folder (here the same features, copied), and the same
    # gestures from the Python API pushing each member's rows
    out, own = ensemble_and_a_member_folder(runs, tmp_path)
    tuned = json.loads((out / "postprocess.json").read_text())  # 2 epochs: scores below 0.03, as the tuned bar
    (out / "postprocess.json").write_text(json.dumps({**tuned, "score_threshold": 0.01}))
    assert main(["stream", str(out), str(paths.features / "synthetic_003.npy"), "--member", f"1={own}",
                 "--lookahead", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    online = FusedOnlineDetector(detector(out), fps=28.0, lookahead=1.0, video_id="synthetic_003")  # its sidecar's
    emitted = [e for chunk in chunks_of(features, online.hop) for e in online.push_members({1: chunk, 0: chunk})]
    emitted += online.flush()
    assert [line["segment(frames)"] for line in lines] == [[e.detection.start_frame, e.detection.end_frame]
                                                           for e in emitted]
    assert lines and {line["video"] for line in lines} == {"synthetic_003"}
    assert min(line["score"] for line in lines) >= 0.01  # the ensemble's hard set, at its own threshold
    # a hop longer than the video: one update at its end, each member's window (member 0's default and the others')
    # holding it all, so the stream emits detect's hard set (the others' windows were their default for a hop of 1
    # step, and the gestures before them had member 0's half score alone: 33 emitted of the 52 detect finds)
    assert main(["stream", str(out), str(paths.features / "synthetic_003.npy"), "--member", f"1={own}",
                 "--lookahead", "1", "--hop", "100000"]) == 0
    at_once = sorted((line["label"], line["segment(frames)"], line["score"])
                     for line in map(json.loads, capsys.readouterr().out.splitlines()))
    assert main(["detect", str(out), str(paths.features / "synthetic_003.npy"), "--member", f"1={own}",
                 "--out", str(tmp_path / "hard.json")]) == 0
    hard = sorted((d["label"], d["segment(frames)"], d["score"])
                  for d in json.loads((tmp_path / "hard.json").read_text())["results"]["synthetic_003"])
    assert [e[:2] for e in at_once] == [h[:2] for h in hard] and hard
    assert np.allclose([e[2] for e in at_once], [h[2] for h in hard], rtol=0, atol=1e-6)
    # scored online on its test split, as `evaluate --online` scores a run
    assert main(["evaluate", str(out), "--online", "--lookahead", "1", "--no-progress"]) == 0
    assert json.loads((out / "online_test.json").read_text())["online"]["updates"] > 0
    with pytest.raises(InputError, match=r"push_members: expected member indices 0..1 \(members/<m> of .*\), got 2"):
        online.push_members({2: features[:4]})
    # every chunk checked before any is taken, the member named; nothing taken after the end
    fresh = FusedOnlineDetector(detector(out), fps=28.0, lookahead=1.0, video_id="v")
    with pytest.raises(InputError, match=r"^member 0: stream chunk 1 .*expected shape \(T, 16\), got \(4, 3\)"):
        fresh.push_members({1: features[:4], 0: features[:4, :3]})
    assert fresh._others[0].received_steps == 0
    for feed in (lambda: online.push_members({1: features[:4]}), lambda: online.push(features[:4]),
                 lambda: online.run([])):  # named as the ensemble's stream, to make again
        with pytest.raises(InputError, match=r"\(\) after flush\(\): .* make a new FusedOnlineDetector\(detector, "):
            feed()


def test_a_member_s_refused_chunk_is_named_by_its_number_and_first_step_as_push_names_one(runs, tmp_path):
    """`push_members` named a member's refused chunk by its own count of the rows released to its window: member 0's
    first chunk was "stream chunk 0" (`push` names it chunk 1), and member 1's fourth, after three held ahead of member
    0's, "stream chunk 0 (steps 0..)" (at its 12th step). A chunk is named as it was given: the member's how-manieth,
    and the step where its rows begin, held rows counted."""
    from mgrec.infer.online import FusedOnlineDetector

    out, _ = ensemble_and_a_member_folder(runs, tmp_path)
    ensemble = detector(out)
    good = np.zeros((4, 16), dtype=np.float32)
    bad = good.copy()
    bad[2, 3] = np.nan
    nan = r"1 NaN/Inf value\(s\), the first at \[t=2, c=3\]$"
    with pytest.raises(InputError, match=r"^stream chunk 1 \(steps 0\.\.\): " + nan):
        OnlineDetector(ensemble.members[0], fps=25.0, lookahead=1.0).push(bad)
    with pytest.raises(InputError, match=r"^member 0: stream chunk 1 \(steps 0\.\.\): " + nan):
        FusedOnlineDetector(ensemble, fps=25.0, lookahead=1.0).push_members({0: bad})
    ahead = FusedOnlineDetector(ensemble, fps=25.0, lookahead=1.0)
    for _ in range(3):
        assert ahead.push_members({1: good}) == []
    with pytest.raises(InputError, match=r"^member 1: stream chunk 4 \(steps 12\.\.\): " + nan):
        ahead.push_members({1: bad})
    ahead.push_members({0: good, 1: good})  # the refused chunk took nothing: member 1's 12 held rows and 4 more
    assert ahead.received_steps == 4 and ahead._others[0].received_steps + ahead._held_rows(1) == 16


def test_a_member_s_file_of_another_length_is_refused_by_detect_and_stream(runs, tmp_path, capsys):
    # member 1's file of the video held its first half (a truncated recording): detect fused the half's detections
    # and stream streamed, each without a word
    paths, _ = runs
    out, own = ensemble_and_a_member_folder(runs, tmp_path)
    half = np.load(own / "synthetic_003.npy")
    half = half[: len(half) // 2]
    np.save(own / "synthetic_003.npy", half)
    (own / "synthetic_003.json").unlink()  # the sidecar would name the cut; a file without one is taken
    features = paths.features / "synthetic_003.npy"
    said = rf"{own / 'synthetic_003.npy'}: member 1 of {out} reads video 'synthetic_003' there, {len(half)} steps " \
           r"covering [\d.]+ s, but member 0's .* covers [\d.]+ s \(tolerance [\d.]+ s\): a different or truncated"
    with pytest.raises(InputError, match=said):
        detector(out).reading(member_folders={1: own}).detect(features)
    for command in (["detect", str(out), str(features), "--out", str(tmp_path / "d.json")], ["stream", str(out),
                                                                                               str(features)]):
        assert main([*command, "--member", f"1={own}", "--device", "cpu"]) == 2, command
        err = capsys.readouterr().err
        assert re.search(said, err) and "Traceback" not in err, command
    assert not (tmp_path / "d.json").exists()
    # the same length is taken
    np.save(own / "synthetic_003.npy", np.load(features))
    assert main(["stream", str(out), str(features), "--member", f"1={own}", "--device", "cpu"]) == 0


def test_a_member_s_rows_pushed_ahead_of_member_0_s_are_held_until_their_time(runs, tmp_path):
    """`push_members` put another member's rows into its window at once: rows pushed ahead of member 0's (a member's
    file pushed first, a source that runs ahead) left its window holding the seconds after the stream's, and the fused
    updates had member 0's half score alone, without a word. They are held until member 0's rows reach their time, as
    a run's aligner holds a stream's, up to the lag it allows; further ahead is refused, nothing taken."""
    from mgrec.infer.online import FusedOnlineDetector
    from mgrec.infer.stream import chunks_of

    paths, _ = runs
    out, _ = ensemble_and_a_member_folder(runs, tmp_path)
    tuned = json.loads((out / "postprocess.json").read_text())
    (out / "postprocess.json").write_text(json.dumps({**tuned, "score_threshold": 0.01}))
    features = np.load(paths.features / "synthetic_003.npy")

    def streamed(lead: int) -> list:
        online = FusedOnlineDetector(detector(out), fps=28.0, lookahead=1.0, video_id="v")
        assert lead > online._others[0].history  # ahead by more than the member's window
        online.push_members({1: features[:lead]})
        emitted = []
        for start in range(0, len(features), online.hop):
            chunk = features[start:start + online.hop]
            emitted += online.push_members({1: features[lead + start:lead + start + online.hop], 0: chunk})
        return [e.detection for e in emitted + online.flush()]

    interleaved = FusedOnlineDetector(detector(out), fps=28.0, lookahead=1.0, video_id="v")
    expected = [e.detection for chunk in chunks_of(features, interleaved.hop)
                for e in interleaved.push_members({1: chunk, 0: chunk})] + [e.detection for e in interleaved.flush()]
    assert expected and streamed(lead=100) == expected
    fresh = FusedOnlineDetector(detector(out), fps=28.0, lookahead=1.0, video_id="v")
    with pytest.raises(InputError, match=r"^member 1: its rows would reach [\d.]+ s of stream, more than 60 s ahead "
                                         r"of member 0's 0.0 s"):
        fresh.push_members({1: np.tile(features, (20, 1))})
    assert fresh._others[0].received_steps == 0 and not fresh._held_rows(1)


def test_a_member_of_several_streams_is_named_and_said_how_its_streams_are_given(runs, tmp_path, capsys):
    """A member 1 of several streams, its other stream's file missing: `mgrec stream` named neither the member nor
    how to give it (`detect` named the member), and both said `detect and stream take --stream pose=FOLDER`, which
    then refused `no stream 'pose' in this run` (--stream names member 0's). The member is named, and its folders
    are said to be given as --member 1=FOLDER with grid/ and pose/, which streams."""
    from tests.helpers import SMALL_MODEL

    from mgrec.config import Config, DataConfig, ModelConfig, StreamConfig
    from mgrec.model.detector import build_detector

    paths, (a, _) = runs
    classes = RunDir(a).read_classes()
    pose, flat, kept = tmp_path / "pose", tmp_path / "flat", tmp_path / "kept"
    for folder in (pose, flat, kept / "grid", kept / "pose"):
        folder.mkdir(parents=True)
        for name in ("synthetic_003.npy", "synthetic_003.json"):
            (folder / name).write_bytes((paths.features / name).read_bytes())
    (pose / "synthetic_003.npy").unlink()  # the member's config's folder lacks the video's pose stream
    streams = [StreamConfig(name=name, features=str(folder), feature_dim=16, stride=4, window=16)
               for name, folder in (("rgb", paths.features), ("pose", pose))]
    configs = [Config(data=DataConfig(feature_dim=16, stride=4, window=16, max_seq_len=128),
                      model=ModelConfig(input_dim=16, num_classes=len(classes), **SMALL_MODEL)),
               Config(data=DataConfig(streams=streams, max_seq_len=128),
                      model=ModelConfig(num_classes=len(classes), **SMALL_MODEL))]
    members = []
    for index, config in enumerate(configs):
        members.append(tmp_path / f"member{index}")
        RunDir(members[-1]).write_for_inference(config, classes, build_detector(config.model), score_threshold=0.0)
    out = tmp_path / "fused"
    make_fused_ensemble(members, out, log=lambda *_: None)
    features = str(paths.features / "synthetic_003.npy")
    said = (rf"^mgrec: error: (no input could be read, nothing was written:\n  )?member 1 of {out} .*stream 'pose' has "
            rf"no feature file {pose}/synthetic_003.npy .*; detect and stream take member 1's as --member 1=FOLDER, "
            r"its 'rgb' files in FOLDER/grid/ and its 'pose' files in FOLDER/pose/ \(as detect --keep-features keeps "
            r"them\)")
    for command in (["stream", str(out), features, "--member", f"1={flat}"],
                    ["detect", str(out), features, "--member", f"1={flat}", "--out", str(tmp_path / "d.json")]):
        assert main(command) == 2
        assert re.search(said, capsys.readouterr().err), command
    for command in (["stream", str(out), features], ["detect", str(out), features, "--out", str(tmp_path / "d.json")]):
        assert main([*command, "--stream", f"pose={kept / 'pose'}"]) == 2
        assert re.search(rf"--stream 'pose=.*': stream 'pose' is read by member 1 of {out} .*; --stream names member "
                         r"0's other streams \(none: it reads one\): give member 1's as --member 1=FOLDER, its 'rgb' "
                         r"files in FOLDER/grid/ and its 'pose' files in FOLDER/pose/",
                         capsys.readouterr().err), command
    assert main(["stream", str(out), features, "--member", f"1={kept}"]) == 0  # as said
    assert "stream synthetic_003: " in capsys.readouterr().err


def test_a_member_refusing_the_file_it_shares_with_member_0_is_told_of_member_only_where_files_are_given(runs,
                                                                                                      tmp_path):
    """`mgrec stream ENSEMBLE F.npy` hands every member the file given: a member refusing it is told how to give it
    its own (--member 1=FOLDER). `evaluate --online` reads each member's file from its own config, and two members on
    one features folder read the same path there too: it has no --member, so the refusal says none."""
    from tests.helpers import SMALL_MODEL

    from mgrec.config import Config, DataConfig, ModelConfig
    from mgrec.infer.stream import ensemble_source
    from mgrec.model.detector import build_detector

    paths, (a, _) = runs
    classes = RunDir(a).read_classes()
    members = []
    for index, dim in enumerate((16, 8)):  # member 1 reads 8-dimensional features: the shared 16-d file is refused
        config = Config(data=DataConfig(feature_dim=dim, stride=4, window=16, max_seq_len=128),
                        model=ModelConfig(input_dim=dim, num_classes=len(classes), **SMALL_MODEL))
        members.append(tmp_path / f"member{index}")
        RunDir(members[-1]).write_for_inference(config, classes, build_detector(config.model), score_threshold=0.0)
    make_fused_ensemble(members, tmp_path / "fused", log=lambda *_: None)
    ensemble = detector(tmp_path / "fused")
    shared = paths.features / "synthetic_003.npy"
    for files_given, told in ((True, True), (False, False)):
        with pytest.raises(InputError, match=r"^member 1 of .*") as refused:
            ensemble_source(ensemble, [shared, shared], "synthetic_003", None, files_given=files_given)
        assert ("--member 1=FOLDER" in str(refused.value)) == told, str(refused.value)


def test_a_member_copy_stopped_by_a_file_size_limit_is_one_line_and_leaves_no_cut_file(runs, tmp_path):
    # shutil.copy2 straight into OUT/members/0/checkpoints/ left the member's weights cut where `ulimit -f` (or a full
    # disk) stopped them, beside the member's own run.json, and a raw traceback
    import subprocess
    import sys

    _, (a, b) = runs
    out = tmp_path / "e"
    smallest = min(path.stat().st_size for path in (a / "checkpoints").glob("*.safetensors"))
    code = ("import resource, sys\nfrom mgrec.errors import InputError\n"
            "from mgrec.infer.fused_ensemble import make_fused_ensemble\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({smallest // 2}, resource.RLIM_INFINITY))\n"
            "try:\n    make_fused_ensemble(sys.argv[1:3], sys.argv[3], log=lambda *_: None)\n"
            "except InputError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(a), str(b), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.strip().endswith(": File too large"), done.stdout + done.stderr
    assert re.fullmatch(r"cannot write .*/e/members/0/checkpoints/\w+\.safetensors: File too large",
                        done.stdout.strip())
    for copied in out.rglob("*"):  # what was copied is whole; nothing cut, no temporary file
        assert not copied.name.endswith(".tmp"), copied
        if copied.is_file():
            assert copied.read_bytes() == (a / copied.relative_to(out / "members" / "0")).read_bytes(), copied


def test_an_ensemble_interrupted_while_tuning_says_its_folder_holds_the_members_not_that_nothing_was_written(
        runs, tmp_path, monkeypatch, capsys):
    # the words were evaluate's ("nothing was written into the run ...: the same command again detects them all"), but
    # the folder held the members and run.json, and the same command again was refused ("exists and is not empty")
    _, (a, b) = runs

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(OfflineDetector, "detect_listed", interrupted)
    out = tmp_path / "both"
    assert main(["ensemble", str(a), str(b), "--fusion", "detections", "--out", str(out)]) == 130
    said = capsys.readouterr().err
    assert f"stopped in video 'synthetic_002' (1 of 1: 0 finished before it): {out} holds the members but no " in said
    assert "remove it and make the ensemble again" in said and "nothing was written" not in said
    assert (out / "members").is_dir() and not (out / "postprocess.json").exists()
