"""`mgrec export`: a run's network as one ONNX file, for runtimes other than PyTorch (onnxruntime, ...).

The file holds the network alone, for videos of any length:

    inputs   features (1, C, T) float32, mask (1, 1, T) bool (True at the video's steps), T a multiple of
             the largest stride (pad the features with zeros, the mask with False)
    outputs  for each pyramid level l (stride s_l = 2**l, T_l = T / s_l):
             class_logits_l (1, T_l, K), offsets_l (1, T_l, 2), mask_l (1, T_l) bool

What mgrec does around the network is written beside it, in FILE.json (`export_record`): each video's
standardisation (`data.normalize`), the decoding (score = sigmoid(logit); point t of level l covers the grid
steps [(t - offset_0) * s_l, (t + offset_1) * s_l]; a grid step i is (i * stride + window / 2) / fps seconds),
the NMS and score threshold (the run's tuned post-processing), the classes and the feature recipe.
`OnnxNetwork` runs such a file in place of the PyTorch network inside mgrec's own post-processing: the tests
detect through it and compare with the run.

The network is traced with the plain forms of the CPU-tuned blocks (`mgrec.model.fastpath`: the same function,
without the DFA gate's pieces of `DFA_PIECE_STEPS`, whose count depends on T) and checked, before the file is
kept, against PyTorch with onnxruntime at two lengths, one of them with padding.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from mgrec.data.features import read_run_recipe
from mgrec.devices import checked_threads
from mgrec.errors import InputError
from mgrec.files import (
    atomic_write,
    atomic_write_text,
    brief,
    check_output,
    check_writable,
    file_sha256,
    is_stream,
    json_or_none,
    missing_file_problem,
    path_argument,
    read_json,
    resolve_path,
    shell_word,
)
from mgrec.infer.offline import OfflineDetector
from mgrec.model import fastpath
from mgrec.model.detector import COMPILED_LOGIT_TOLERANCE, DetectorOutput
from mgrec.model.end_to_end import EndToEndDetector
from mgrec.provenance import command_line, provenance
from mgrec.run import RunDir

FORMAT = "mgrec-onnx-network/1"
# The two lengths, in multiples of the largest stride, the file is checked at: the traced one, and another that is
# no multiple of the local attention's chunks, with its last fifth padded.
TRACED_MULTIPLE, CHECKED_MULTIPLE = 8, 13
# How far the file's logits and offsets may stray from PyTorch's: float sums in another order, as a compiled
# network's (measured: 2.4e-6 on the demo's networks).
TOLERANCE = COMPILED_LOGIT_TOLERANCE[None]


def _onnxruntime(exporting: bool):
    """onnxruntime, and for `exporting` also the exporter's onnxscript: running an exported file needs no exporter
    (a machine that only streams may lack onnxscript, and was refused for it in the words of `mgrec export`)."""
    try:
        if exporting:
            import onnxscript  # noqa: F401 (torch.onnx's exporter needs it)
        import onnxruntime
    except ImportError as exc:
        if exporting:
            raise InputError(f"mgrec export needs onnx, onnxscript and onnxruntime ({exc.name} is not installed): "
                             "pip install 'mgrec[export]'") from None
        raise InputError(f"running an exported network (mgrec stream --onnx, OnnxNetwork) needs onnxruntime "
                         f"({exc.name} is not installed): pip install onnxruntime, or 'mgrec[export]'") from None
    return onnxruntime


class _Outputs(nn.Module):
    """The network with its outputs as a flat tuple (ONNX has no dataclasses): logits, offsets, masks by level."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        out = self.network(features, mask)
        return (*out.cls_logits, *out.offsets, *out.masks)


def output_names(levels: int) -> list[str]:
    return ([f"class_logits_{level}" for level in range(levels)] + [f"offsets_{level}" for level in range(levels)]
            + [f"mask_{level}" for level in range(levels)])


@dataclass
class ExportSummary:
    """What `export_onnx` wrote and measured: the two files, the record written into the second (`export_record`),
    and the seconds it took."""

    onnx_path: Path
    record_path: Path
    record: dict
    seconds: float

    @property
    def levels(self) -> int:
        return len(self.record["strides"])

    @property
    def length_multiple(self) -> int:
        return self.record["length_multiple"]

    @property
    def checked_lengths(self) -> list[int]:
        return self.record["checked"]["lengths"]

    @property
    def largest_difference(self) -> float:
        return self.record["checked"]["largest_difference"]

    @property
    def notes(self) -> list[str]:
        return self.record["notes"]

    def describe(self) -> str:
        size = self.onnx_path.stat().st_size / 2**20
        lines = [f"wrote {self.onnx_path} ({size:.1f} MB) and {self.record_path}: the network for any length T that "
                 f"is a multiple of {self.length_multiple}, {self.levels} pyramid levels out",
                 f"checked against PyTorch with onnxruntime at T = "
                 f"{' and '.join(str(t) for t in self.checked_lengths)}: largest difference of logits and offsets "
                 f"{self.largest_difference:.1e} (at most {TOLERANCE:g}); {self.seconds:.0f} s"]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def export_onnx(run_dir: str | Path, out: str | Path, checkpoint: str = "best") -> ExportSummary:
    """Write the network of the run at `run_dir` (its `checkpoint`'s EMA weights) to `out` (.onnx) and its record
    to `out` with the suffix .json; returns what was written. Refused: a detection-level ensemble (no one network)
    and an end-to-end run (its network reads video clips through the adapted backbone)."""
    onnxruntime = _onnxruntime(exporting=True)
    out = Path(out)
    if hidden := _suffix_alone(out):
        raise InputError(f"--out {out}: {hidden}")
    if out.suffix.lower() != ".onnx":
        raise InputError(f"--out {out}: expected a file name ending in .onnx (its record is written beside it, "
                         f"{out.with_suffix('.json').name})")
    record_path = out.with_suffix(".json")
    run = RunDir(run_dir)
    for path in (out, record_path):
        check_output(path, protected=run.owned_files())
        _check_file_output(path, out)
    _check_record_replaced(record_path, out)
    _check_network_replaced(out, record_path)
    # FILE.onnx a link to FILE.json (or both links to one file): the network was written through the link, then the
    # record over it, and both were reported written, the network lost
    if resolve_path(out) == resolve_path(record_path):
        raise InputError(f"--out {out}: it and its record {record_path.name} are one file ({resolve_path(out)}), "
                         "through a symbolic link; mgrec export writes two files: remove the link, or choose another "
                         "name")
    started = time.time()
    detector = OfflineDetector.from_run(run_dir, checkpoint, device="cpu", precision="fp32")
    if detector.members is not None:
        raise InputError(f"{run_dir} fuses the detections of {len(detector.members)} runs, each with its own network: "
                         f"export each member ({run.member_path(0)}, ...)")
    if isinstance(detector.model, EndToEndDetector):
        raise InputError(f"{run_dir} is an end-to-end run: its network reads video clips through the adapted "
                         "backbone, which this export does not hold; extract features with `mgrec extract --run` and "
                         "train a feature run to export")
    recipe = read_run_recipe(run)  # checked before the half minute of tracing; copied into the record
    network = detector.model.eval()
    multiple = network.max_div_factor
    levels = len(network.strides)
    traced = TRACED_MULTIPLE * multiple
    with torch.no_grad(), fastpath.forced(cpu=False), _quiet_exporter():
        steps = torch.export.Dim("steps", min=1, max=2**20 // multiple)
        program = torch.onnx.export(
            _Outputs(network), (torch.zeros(1, network.input_dim, traced), torch.ones(1, 1, traced, dtype=torch.bool)),
            dynamo=True, external_data=False, verbose=False, input_names=["features", "mask"],
            output_names=output_names(levels),
            dynamic_shapes={"features": {2: multiple * steps}, "mask": {2: multiple * steps}})
    checked = [traced, CHECKED_MULTIPLE * multiple]
    notes = _notes(detector)
    # made before the file is written: what it reads (the run's feature recipe) may be refused
    record = export_record(detector, checkpoint, network.strides, checked, notes, onnxruntime.__version__, recipe)

    def write_checked(temp_name: str) -> None:
        program.save(temp_name, external_data=False)
        session = onnxruntime.InferenceSession(temp_name, _session_options(onnxruntime, None),
                                               providers=["CPUExecutionProvider"])
        difference = max(_difference(network, session, length, padded=index > 0, where=out)
                         for index, length in enumerate(checked))
        if not difference <= TOLERANCE:  # also NaN
            raise InputError(f"{out}: the exported network differs from {run_dir}'s by {difference:.3g} in its "
                             f"logits or offsets (at most {TOLERANCE:g} expected): not kept")
        record["checked"]["largest_difference"] = difference
        # The pair is written one file after the other: a kill between them, or a copy of one file only, leaves a
        # file beside the record of another export; the hash tells them apart (`read_export_record`).
        record["onnx_sha256"] = file_sha256(temp_name)

    atomic_write(out, write_checked)
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    return ExportSummary(out, record_path, record, time.time() - started)


def _session_options(onnxruntime, threads: int | None):
    """onnxruntime's options with `threads` threads (None: torch's setting, `--threads`): its own default is every
    core, whatever the command was told."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads or torch.get_num_threads()
    return options


def _check_file_output(path: Path, out: Path) -> None:
    """Before the half minute of tracing, each of the two outputs: a file that can be written. A folder at either
    name was refused after it, and at FILE.json only once FILE.onnx was written, which stayed without its record;
    a named pipe took the file and then hung the check, which reads it back (so does every reader of the pair)."""
    if is_stream(path):
        raise InputError(f"--out {out}: {path} is a pipe or device, not a file: mgrec export writes FILE.onnx and "
                         "FILE.json as files, read back together (to check the network, and by --onnx); give a file "
                         "name")
    check_writable(path)


def _check_record_replaced(record_path: Path, out: Path) -> None:
    """The user names FILE.onnx, not FILE.json: a FILE.json there already is replaced only where it is the record
    of an earlier export. A feature file's sidecar (`--out features/v.onnx`), an annotations file or a config
    beside the name were overwritten by the record without a word."""
    if record_path.is_file():
        found = json_or_none(record_path)
        if not isinstance(found, dict) or found.get("format") != FORMAT:
            raise InputError(f"--out {out}: its record is written beside it as {record_path.name}, but {record_path} "
                             f"is there already and is not the record of an mgrec export (format {FORMAT}): choose "
                             "another name, or move that file away")


def _check_network_replaced(out: Path, record_path: Path) -> None:
    """A file at FILE.onnx already is replaced only where it is an earlier export's: where the record of an mgrec
    export lies beside it as FILE.json (which `_check_record_replaced` checks), as extraction replaces an array beside
    its own sidecar, even one cut short (a kill between the pair's two writes; `read_export_record` advises exporting
    over it). The user's own model of that name (another exporter's, or a copy of an export without its record) was
    replaced without a word."""
    if out.is_file() and not record_path.is_file():
        raise InputError(f"--out {out}: {out} is there already, without the record {record_path.name} that mgrec "
                         "export writes beside its file, so it is not an earlier export of mgrec: exporting would "
                         "replace it; choose another name, or move that file away")


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx's exporter warns of every torchvision operator it cannot register (torchvision does not work with
    the CPU wheel, and the network uses none) and of its own internals (deprecations, axis names): not the user's
    concern; the check against PyTorch after it is."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _difference(network: nn.Module, session, length: int, padded: bool, where: Path) -> float:
    """The largest difference between the file's and the network's logits and offsets at the video's points, on
    random features of `length` steps (the last fifth padded when `padded`); refused where the masks differ."""
    generator = torch.Generator().manual_seed(length)
    features = torch.randn(1, network.input_dim, length, generator=generator)
    mask = torch.ones(1, 1, length, dtype=torch.bool)
    if padded:
        mask[..., length - length // 5:] = False
    with torch.no_grad():
        own = network(features, mask)
    try:
        outputs = session.run(None, {"features": features.numpy(), "mask": mask.numpy()})
    except Exception as exc:  # onnxruntime's own error types: the file cannot run at this length
        raise InputError(f"{where}: the exported network fails in onnxruntime at T = {length} ({exc}); "
                         "not kept") from None
    other = _output_of(outputs, own.strides)
    for level, (a, b) in enumerate(zip(own.masks, other.masks)):
        if not torch.equal(a, b):
            raise InputError(f"{where}: the exported network's mask of level {level} differs from {where.name}'s run's "
                             f"at T = {length}: not kept")
    pairs = zip(own.cls_logits + own.offsets, other.cls_logits + other.offsets, own.masks * 2)
    return max(float((a.float() - b.float()).abs()[m].max()) if m.any() else 0.0 for a, b, m in pairs)


def _output_of(outputs: list[np.ndarray], strides: list[int]) -> DetectorOutput:
    """The file's flat outputs (logits, then offsets, then masks, by level) as the network's `DetectorOutput`."""
    levels = len(strides)
    tensors = [torch.from_numpy(np.asarray(o)) for o in outputs]
    return DetectorOutput(tensors[:levels], tensors[levels:2 * levels], tensors[2 * levels:], list(strides))


def _notes(detector: OfflineDetector) -> list[str]:
    """What the run does around its network that a user of the file must do too (also in the record)."""
    notes = []
    streams = detector.config.data.input_streams()
    if len(streams) > 1:
        notes.append(f"the run reads {len(streams)} input streams ({', '.join(s.name for s in streams)}): the "
                     "features are their rows joined on the grid stream's steps, in that order (data.streams); the "
                     "record's feature_recipe is the grid stream's")
    if detector.config.data.normalize == "video":
        notes.append("the run standardises each video's features by the video's own mean and spread per channel "
                     "(data.normalize: video) before the network: do so too (the record's `normalize`)")
    if detector.postprocess.shifted_passes > 1:
        notes.append(f"the run detects each video {detector.postprocess.shifted_passes} times, from steps 0, 1, ... "
                     "on, and fuses the passes (postprocess.shifted_passes); the file is one pass")
    if detector.second_opinion is not None:
        notes.append("the run rescores its detections with a whole-gesture classifier (postprocess.second_opinion), "
                     "which the file does not hold")
    return notes


def export_record(detector: OfflineDetector, checkpoint: str, strides: list[int], checked: list[int],
                  notes: list[str], onnxruntime_version: str, recipe: dict | None) -> dict:
    """FILE.json: how to feed the file and read its outputs as the run does (`checked.largest_difference` and
    `onnx_sha256` are filled in once the file is written and checked). `recipe`: the run's feature recipe
    (`RunDir.read_recipe`)."""
    config, post = detector.config, detector.postprocess
    run = RunDir(detector.run_dir)
    multiple = strides[-1]
    return {
        "format": FORMAT,
        "run": str(detector.run_root),
        "checkpoint": checkpoint,
        "weights_sha256": file_sha256(run.weights_path(checkpoint)),  # which weights: `OnnxNetwork.for_detector`
        "variant": config.model.variant,
        "inputs": {
            "features": f"float32 (1, {detector.model.input_dim}, T): the video's feature steps, T a multiple of "
                        f"{multiple}, the steps beyond the video zero",
            "mask": "bool (1, 1, T): True at the video's steps, False at the padding",
        },
        "length_multiple": multiple,
        "outputs": {
            "class_logits_l": f"float32 (1, T / 2**l, {len(detector.classes)}): per point and class; score = "
                              "sigmoid(logit)",
            "offsets_l": "float32 (1, T / 2**l, 2): distances from point t to the segment's start and end, in "
                         "units of the level's stride: the segment covers grid steps [(t - offsets_l[t, 0]) * "
                         "2**l, (t + offsets_l[t, 1]) * 2**l]",
            "mask_l": "bool (1, T / 2**l): True at the points that lie in the video",
        },
        "strides": strides,
        "classes": detector.classes,
        "grid": {"stride": config.data.stride, "window": config.data.window, "fps": config.data.fps,
                 "seconds_of_step": "grid step i is (i * stride + window / 2) / fps seconds into the video "
                                    "(fps: the run's data.fps, else the video's own)"},
        "normalize": config.data.normalize,
        "postprocess": dataclasses.asdict(post),
        "postprocess_steps": "per level, the pre_nms_topk highest scores above pre_nms_thresh at the points of the "
                             "video; segments longer than min_duration steps; NMS over all levels (nms, iou_threshold, "
                             "sigma, min_score, max_detections); with voting > 0, each kept segment made the "
                             "score-weighted mean of the candidates of its class at a tIoU of at least voting with it; "
                             "the hard set: scores at or above score_threshold (class_thresholds per class where set); "
                             "mgrec.postprocess is the reference",
        "feature_recipe": recipe,
        "notes": notes,
        "checked": {"lengths": checked, "largest_difference": None, "tolerance": TOLERANCE,
                    "onnxruntime": onnxruntime_version},
        "onnx_sha256": None,
        "provenance": provenance(command_line()),
    }


def _suffix_alone(path: Path) -> str | None:
    """What is wrong with a file name that is the suffix .onnx alone (`--out .onnx`, `--onnx dir/.onnx`), else None.
    Such a name is a hidden file's, with no suffix (`Path(".onnx").suffix` is ""): it was refused as "expected a file
    name ending in .onnx", of a name that ends so, its record to be named .onnx.json."""
    if path.name.lower() != ".onnx":
        return None
    return (f"{path.name!r} is the suffix alone, no name before it (a hidden file's name, which has no suffix: its "
            f"record FILE.json would have no FILE); name the file, e.g. {path.with_name('model.onnx')}")


def read_export_record(path: Path) -> dict:
    """The record `export_onnx` wrote beside the ONNX file at `path` (FILE.json)."""
    record_path = path.with_suffix(".json")
    # The record given for the file (`--onnx net.json`), or the pair's name without its suffix, was read as a file
    # its record does not describe, with the advice to export to a name that `mgrec export` refuses.
    if hidden := _suffix_alone(path):
        raise InputError(f"{path}: {hidden}")
    if path.suffix.lower() != ".onnx":
        sibling = path.with_suffix(".onnx")
        there = f"; {sibling} is there" if sibling.is_file() else ""
        raise InputError(f"{path}: expected the .onnx file of mgrec export (FILE.onnx, its record FILE.json beside "
                         f"it){there}")
    if not path.is_file():  # a folder or a pipe is named for what it is, not as missing
        missing = not path.exists() and not path.is_symlink()
        raise InputError(f"{path}: {missing_file_problem(path, 'file of mgrec export')}"
                         + (f" (mgrec export RUN --out {path.name} writes it)" if missing else ""))
    if not record_path.is_file():
        raise InputError(f"{path}: its record {record_path.name} is not beside it (mgrec export writes both)")
    record = read_json(record_path, "export record")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{record_path}: expected the record of `mgrec export` (format {FORMAT})")
    for key, kind in (("strides", list), ("length_multiple", int), ("classes", list), ("onnx_sha256", str),
                      ("weights_sha256", str)):
        if not isinstance(record.get(key), kind):
            raise InputError(f"{record_path} [{key}]: expected a {kind.__name__}, as mgrec export writes it")
    strides, multiple = record["strides"], record["length_multiple"]
    if not strides or strides != [2**level for level in range(len(strides))] or multiple != strides[-1]:
        raise InputError(f"{record_path} [strides, length_multiple]: expected the strides 1, 2, 4, ... of the "
                         f"pyramid's levels and the largest of them, as mgrec export writes them; got {brief(strides)} "
                         f"and {brief(multiple)}")
    if file_sha256(path) != record["onnx_sha256"]:
        raise InputError(f"{path}: not the file its record {record_path.name} describes (another export's, or one "
                         f"cut short): export again with `mgrec export {shell_word(record.get('run'))} --out "
                         f"{shell_word(path)}`")
    return record


class OnnxNetwork(nn.Module):
    """An exported file run by onnxruntime, in place of a run's network: `forward(features, mask)` returns the
    `DetectorOutput` the network would. `OfflineDetector` detects with it:
    `dataclasses.replace(OfflineDetector.from_run(RUN), model=OnnxNetwork("net.onnx"))`."""

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        path = path_argument(path, "OnnxNetwork: path")  # None, 5: pathlib's raw TypeError
        checked_threads(threads)  # 0 took torch's setting without a word
        onnxruntime = _onnxruntime(exporting=False)
        self.record = read_export_record(path)
        try:
            self.session = onnxruntime.InferenceSession(str(path), _session_options(onnxruntime, threads),
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types
            raise InputError(f"{path}: not an ONNX file onnxruntime can run ({exc})") from None
        self.strides = list(self.record["strides"])
        self.max_div_factor = self.record["length_multiple"]
        if len(self.session.get_outputs()) != 3 * len(self.strides):  # logits, offsets and a mask per level
            raise InputError(f"{path}: {len(self.session.get_outputs())} outputs, where its record's "
                             f"{len(self.strides)} levels make {3 * len(self.strides)}: not an export of mgrec")
        self.input_dim = self.session.get_inputs()[0].shape[1]
        # mgrec's post-processing finds a network's device from its parameters: the CPU, where onnxruntime runs
        self.register_parameter("device_marker", nn.Parameter(torch.empty(0), requires_grad=False))

    @classmethod
    def for_detector(cls, path: str | Path, detector: OfflineDetector, threads: int | None = None) -> OnnxNetwork:
        """The file at `path` to run in place of `detector`'s network: refused unless it was exported from the same
        weights (its record's SHA-256 of the run's checkpoint) with the same classes, on the CPU in float32."""
        path = path_argument(path, "OnnxNetwork: path")  # before the checks whose messages name it
        checked_threads(threads)
        if detector.members is not None:  # it has no checkpoint of its own to compare with
            raise InputError(f"{detector.run_dir} fuses the detections of {len(detector.members)} runs, each with its "
                             f"own network: give one of its members (members/<m>), with its own export")
        if detector.autocast is not None or next(detector.model.parameters()).device.type != "cpu":
            raise InputError(f"{path}: the exported network runs in float32 on the CPU (onnxruntime): give "
                             "--device cpu and --precision fp32, or leave them at auto")
        network = cls(path, threads)
        record, run = network.record, RunDir(detector.run_dir)
        weights = run.weights_path(detector.checkpoint)
        if record["weights_sha256"] != file_sha256(weights):
            raise InputError(f"{path}: exported from other weights than {weights} (its record "
                             f"{Path(path).with_suffix('.json').name} names {record.get('run')}, checkpoint "
                             f"{record.get('checkpoint')}): export this run's with `mgrec export "
                             f"{shell_word(detector.run_dir)} --out "
                             f"{shell_word(_export_path_for(detector, path, record))}`")
        # Other classes of the same weights (the record edited, or the run's class names changed since) are told as
        # such: refused as "exported from other weights" while naming this very run and checkpoint, they were not.
        if record["classes"] != detector.classes:
            raise InputError(f"{Path(path).with_suffix('.json')} [classes]: {brief(record['classes'])}, but "
                             f"{run.classes_path} holds {brief(detector.classes)}, for the same weights (the "
                             f"record edited, or the run's classes changed since?): export the run again "
                             f"with `mgrec export {shell_word(detector.run_dir)} --out {shell_word(path)}`")
        return network

    @classmethod
    def detector(cls, run_dir: str | Path, path: str | Path, device: str = "auto", precision: str = "auto",
                 threads: int | None = None) -> OfflineDetector:
        """The run's detector with the file at `path` run in place of its network (`for_detector`'s checks):
        `detect --onnx`, `stream --onnx`. onnxruntime runs it on the CPU in float32, which is what auto means here."""
        path, threads = path_argument(path, "OnnxNetwork: path"), checked_threads(threads)  # before the run loads
        device, precision = ("cpu" if device == "auto" else device), ("fp32" if precision == "auto" else precision)
        detector = OfflineDetector.from_run(run_dir, device=device, precision=precision)
        return dataclasses.replace(detector, model=cls.for_detector(path, detector, threads))

    def forward(self, features: Tensor, mask: Tensor) -> DetectorOutput:
        outputs = self.session.run(None, {"features": features.detach().cpu().float().numpy(),
                                          "mask": mask.detach().cpu().numpy()})
        return _output_of(outputs, self.strides)


def _export_path_for(detector: OfflineDetector, given: str | Path, record: dict) -> Path:
    """Where to export `detector`'s network when the file `given` holds another network: `given` itself when its record
    names this run and checkpoint (the run retrained, or its checkpoint replaced, since), else a new file beside it
    named after the run, so that following the advice does not replace the export of another run or checkpoint.
    The record's run is compared as `export_record` wrote it (the run's resolved folder), not resolved again."""
    given = Path(given)
    if record.get("run") == str(detector.run_root) and record.get("checkpoint") == detector.checkpoint:
        return given
    name = detector.run_root.name or "run"
    fresh = given.with_name(f"{name}.onnx" if detector.checkpoint == "best" else f"{name}-{detector.checkpoint}.onnx")
    return fresh if fresh != given else given.with_name(f"{given.stem}-new.onnx")
