"""The `mgrec` command: one sub-command per job; each parses, calls one function, prints.

User errors (`InputError`) are printed as one message without a traceback (exit code 2).
Every option's help states its default, and every command's help ends with examples
(`tests/test_cli.py` walks the parser to keep it so).

Progress bars appear only when both stdout and stderr are terminals: in a log file a bar's
frames would be glued to the lines around them, so there the output is plain lines.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from mgrec import __version__, terminal
from mgrec.allocator import keep_freed_cpu_memory
from mgrec.errors import InputError
from mgrec.files import counted, name_too_long_problem, part_of, shell_word
from mgrec.files import home_expanded as files_home_expanded
from mgrec.smg_csv import decimal_number, whole_number

DEFAULT_DEMO_CONFIG = "demo/default.yaml"  # shipped in the package: src/mgrec/configs/demo/default.yaml
DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
PRECISION_HELP = ("the network's forward pass: auto (bf16 autocast on CUDA, fp32 on a CPU, where bf16 made the "
                  "demo's small model no faster; on a CPU with AMX pass bf16 for SMG-sized models, which it made "
                  "0.70x as long there, and 1.2x as long with AVX512-BF16 alone), fp32 (exactly the float32 "
                  "detections) or bf16 (on a CPU without native bf16 it is emulated and much slower); outputs "
                  "record the one used")


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: with spinning, one other busy process on a
    # 2-core machine made a training step 50x slower (measured: 32 s instead of 0.6 s).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_cpu_memory()
    terminal.install()  # names from data printed safely; a closed pipe never stops the work
    parser = build_parser()
    _Parser.words = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args, unknown = parser.parse_known_args(argv)
            if unknown:  # said with the command's own usage line, not mgrec's (argparse's parse_args gives mgrec's)
                _parser_of(unknown[0], argv, args, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        except SystemExit:  # --help and --version print, then exit: their output is flushed here too
            sys.stdout.flush()
            raise
        if not hasattr(args, "run"):  # no command (or no action of `mgrec data`): its help, as usage goes, on stderr
            getattr(args, "group_parser", parser).print_help(sys.stderr)
            return 2
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        from mgrec.provenance import invoked_as

        # results record the command that made them: main's own words where Python gave them, not sys.argv's
        with _terminated_as_said(), invoked_as(None if argv is None else ["mgrec", *argv]):
            code = args.run(args) or 0
        sys.stdout.flush()  # here, not at exit: a full disk is one line and a non-zero exit, not a traceback
        return code
    except InputError as exc:
        print(f"mgrec: error: {terminal.visible(terminal.bounded(str(exc)))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if no_temporary_folder(exc):
            print(f"mgrec: error: {terminal.visible(terminal.bounded(no_temporary_folder(exc)))}", file=sys.stderr)
            return 2
        # A path the user gave with a name over 255 bytes, or longer than the system's limit: Python's Path.exists()
        # and is_file() raise it (they swallow only "not there"), from whichever check meets the path first, in every
        # command, for inputs and outputs alike. It is always the path given: mgrec keeps its own names short.
        # Likewise "Permission denied" where a path given (or recorded: a run copied from another user, its config
        # naming data under /root) lies under a folder this user may not enter: every check of it raised it, a raw
        # traceback from data check, train, ensemble. Outputs are probed before the work (check_writable), so it is
        # a path read, or looked at.
        if exc.errno in (errno.EACCES, errno.EPERM) and exc.filename is not None:
            print(f"mgrec: error: {terminal.visible(terminal.bounded(str(exc.filename)))}: {exc.strerror} (this user "
                  "may not open it, or a folder on its way); ask its owner for access, or copy it where you may read "
                  "it and give that path", file=sys.stderr)
            return 2
        if exc.errno != errno.ENAMETOOLONG:
            raise
        problem = name_too_long_problem(exc.filename if exc.filename is not None else str(exc))
        print(f"mgrec: error: {terminal.visible(problem)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a command may say what continues it (`cmd_train`)
        print(f"mgrec: interrupted{f'; {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"mgrec: terminated{f'; {exc}' if str(exc) else ''}", file=sys.stderr)
        return 128 + signal.SIGTERM


def no_temporary_folder(exc: OSError) -> str | None:
    """What to do where Python found no folder to put temporary files in (`tempfile.gettempdir`, which torch calls as it
    builds the first network of `train`, `stream`, `evaluate`, ...: it tries /tmp, /var/tmp, /usr/tmp and the current
    folder, writing a few bytes in each), else None. A full /tmp (a small tmpfs on clusters), a quota or `ulimit -f`
    was a raw traceback, "FileNotFoundError: No usable temporary directory found in [...]", which named no disk."""
    if exc.errno != errno.ENOENT or not str(exc.strerror or "").startswith("No usable temporary directory found"):
        return None
    tried = str(exc.strerror).removeprefix("No usable temporary directory found in ")
    return (f"no folder for temporary files can be written (tried {tried}: a full disk, a quota, a file-size limit "
            "or read-only folders); free space there, or set TMPDIR to a folder that can be written")


class Terminated(BaseException):
    """SIGTERM (a scheduler's, `kill`, a job's time limit) during a command: said in one line, exit 143, as Ctrl-C is
    (the command died in silence). `mgrec stream` ends its session on it instead, with its own handler. A
    BaseException, as KeyboardInterrupt is: an `except Exception` on the way (a reader calling a file corrupt) must not
    take it for the failure of what it was doing."""


@contextlib.contextmanager
def _terminated_as_said() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signal handlers
        yield
        return

    def stop(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default; descriptions and examples keep their line breaks.

    A default that says nothing by itself (None, an empty list, an off flag) is not printed: the help
    text says what happens without the option instead ("(default: ...)" in its own words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        # identity, not ==: a default of 0 or 0.0 is a value worth showing, unlike an off flag (False)
        says_nothing = default is None or default is False or default is argparse.SUPPRESS or default == []
        if "default" in text or action.required or says_nothing:
            return text
        return super()._get_help_string(action)


def split_argument(text: str) -> str:
    """--split / --tune-on: `split_name` (Testing is test, as in the annotations; one plain name)."""
    from mgrec.config import split_name

    try:
        return split_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def video_list(text: str) -> list[str]:
    """--videos: video ids separated by commas, each once (spaces around them dropped)."""
    videos = [video.strip() for video in text.split(",")]
    if not all(videos):
        raise argparse.ArgumentTypeError(f"expected video ids separated by commas, got {text!r}")
    return list(dict.fromkeys(videos))


# Numbers on the command line are read by the rule of every number mgrec reads from text (`smg_csv`): ASCII
# digits with an optional sign, point and exponent. float() and int() also take "0_5" (5) and Arabic-Indic or
# full-width digits, which made --score-threshold 0_5 a bar of 5 and --hop 2_4 a hop of 24 without a word.


def number(text: str, what: str = "a number") -> float:
    """Any number written in ASCII (nan and inf too, for options that say what they do with them)."""
    try:
        return decimal_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} (ASCII digits, e.g. 0.5 or 1e-3), got {text!r}") from None


def whole(text: str) -> int:
    try:
        return whole_number(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number (ASCII digits), got {text!r}") from None


def finite_number(text: str) -> float:
    value = number(text, "a finite number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def nonnegative_number(text: str) -> float:
    value = finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def home_expanded(text: str) -> str:
    """A command-line word with a leading `~` made the home folder (`mgrec.files.home_expanded`, which the Python entry
    points' paths go through too); a `~user` of no user is argparse's error, naming the argument."""
    try:
        return files_home_expanded(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def path_text(text: str) -> Path:
    """A file or folder on the command line. An empty word (`--unlabeled "$POOL"` with POOL unset or empty, `--out ""`)
    is refused: `Path("")` is the current folder, so it pseudo-labelled, trained into or read whatever lay there. A
    leading `~` is the home folder (`home_expanded`)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty word (a shell variable unset or empty?); "
                                         "name the current folder as .")
    return Path(home_expanded(text))


def file_input(text: str) -> Path:
    """An input file or folder of `mgrec detect` and `extract`: a URL (which a path would print with a slash lost, and
    its password) is said to be `mgrec stream`'s."""
    from mgrec.data.videos import NetworkSource, stream_source

    path_text(text)
    source = stream_source(home_expanded(text))
    if isinstance(source, NetworkSource):
        raise argparse.ArgumentTypeError(
            f"{source} is a URL: `mgrec stream RUN URL` reads a network source as it arrives; this command reads "
            "files (save the stream to one first: ffmpeg -i URL -c copy FILE.mkv)")
    return source


def stream_input(text: str):
    """An input of `mgrec stream`: a path, or a URL (`mgrec.data.videos.stream_source`; imported at the call, as
    the parser is built before any command runs)."""
    from mgrec.data.videos import stream_source

    path_text(text)
    return stream_source(home_expanded(text))


# More threads than this is no machine's core count: torch's thread pool segfaults when asked for 99999.
MAX_THREADS = 1024


def thread_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS}, got {value} (this machine has "
                                         f"{os.cpu_count()} cores)")
    return value


# More seed runs than this in one command is a typo, not an experiment: each is a whole training, and the
# members are listed and checked before the first trains (a count of 5e7 built a 7.5-GB list first).
MAX_SEEDS = 1000


def seed_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SEEDS} seeds (each is a whole training), got {value}")
    return value


# onnxruntime's sessions take torch's number (`OnnxEfficientNet`, `OnnxNetwork`): the help said "torch CPU threads"
# only, where `mgrec extract`'s default runtime on a CPU is onnxruntime and it ran on these threads
THREADS_HELP = ("CPU threads of torch and of onnxruntime (where it runs efficientnet-lite0 or an --onnx network), "
                "before or after the command (default: torch's choice; 1 for the updates of a stream: stream, "
                "evaluate --online, the demo's streamed evaluation)")


def streaming_threads(args) -> int:
    """The torch threads a stream's updates run on: --threads where given, else one. A stream's updates are small
    (a window of the last seconds), and small operations run fastest on one thread: more only wait for each other
    (on the 2-core Xeon, the demo's update took 20.8 ms on two threads against 10.6 ms on one)."""
    return args.threads or 1


class _StoreOnce(argparse._StoreAction):
    """argparse's `store`, except that an option given twice with other values is refused: argparse keeps the last
    and drops the first without a word (`score --gt a.json ... --gt b.json` scored against b.json, `extract --fuse a
    b --fuse c` fused c alone). The same value twice says nothing new and is taken. Options that add up (`--set`,
    `--member`, `--stream`) are `append` actions and keep every value."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_options_given", {})
        if option_string is not None:
            earlier = given.get(self.dest)
            if earlier is not None and earlier[1] != values and repr(earlier[1]) != repr(values):  # nan twice: alike
                raise argparse.ArgumentError(self, f"given twice ({earlier[0]} {_quoted(earlier[1])}, then "
                                                   f"{option_string} {_quoted(values)}); give it once")
            given[self.dest] = (option_string, values)
        super().__call__(parser, namespace, values, option_string)


class _AppendOverride(argparse._AppendAction):
    """`--set`'s `append`, except that a key given other values by two items is refused, as `_StoreOnce` refuses an
    option given twice: the last won without a word (`--set train.lr=1e-3` appended to a script that sets
    train.lr=3e-4 earlier trained at 1e-3)."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        from mgrec.config import key_set_twice

        twice = key_set_twice(getattr(namespace, self.dest))
        if twice is not None:
            raise argparse.ArgumentError(self, twice)


def _quoted(values: object) -> str:
    """An option's value as the command line gave it, for a message: quoted for a shell, cut (`brief`)."""
    from mgrec.files import brief

    items = values if isinstance(values, list) else [values]
    text = " ".join(shell_word(item) for item in items)
    return text if len(text) <= 80 else brief(text)


class _Parser(argparse.ArgumentParser):
    """mgrec's parsers (the sub-commands' are made of the same class): an option given twice with other values is
    refused (`_StoreOnce`)."""

    # The command line being parsed (set by `main`), for the hint of `error`.
    words: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str):  # type: ignore[override]
        super().error(message + _dash_name_hint(_Parser.words, self) + _unknown_option_hint(_Parser.words, self))


def _unknown_option_hint(words: list[str], parser: argparse.ArgumentParser) -> str:
    """A misspelt option (`--spilt`, `--outt`) is named with the option it is closest to: argparse said only
    "unrecognized arguments: --spilt test", and where the misspelling left a required option out ("the following
    arguments are required: --out") it did not name the word at all. Only a command's own parser says so: mgrec's
    and `mgrec data`'s options are not the command's, whose name may be the word that is wrong."""
    import difflib

    from mgrec.files import brief

    if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
        return ""
    options = [name for name in parser._option_string_actions if name.startswith("--")]
    hints = []
    for word in _words_read_as_options(words, parser):
        if os.path.lexists(word) or Path(word).suffix:
            continue  # a file name beginning with '-': `_dash_name_hint` names it
        name = word.split("=", 1)[0]
        close = difflib.get_close_matches(name, options, n=1, cutoff=0.7)
        hints.append(f"{brief(name)} is not an option of {parser.prog}"
                     + (f"; did you mean {close[0]}?" if close else f"; `{parser.prog} --help` lists them"))
    return f" ({'; '.join(hints)})" if hints else ""


def _dash_name_hint(words: list[str], parser: argparse.ArgumentParser) -> str:
    """A file name on the command line that begins with '-' (`-lead.npy`, `--out -r.html`) is taken for an option,
    and argparse's error ("the following arguments are required: INPUT", "argument --out: expected one argument",
    "unrecognized arguments") never names it: the hint does, with the spelling that works."""
    from mgrec.files import brief

    for word in _words_read_as_options(words, parser):
        if os.path.lexists(word) or Path(word).suffix:
            return (f" ({brief(word)} begins with '-', so it was read as an option, not as a file name; write "
                    f"{brief('./' + word)})")
    return ""


def _words_read_as_options(words: list[str], parser: argparse.ArgumentParser) -> Iterator[str]:
    """The words before `--` that argparse reads as options and `parser` has none of: they begin with '-' (not '-'
    alone, not a negative number, which is a value)."""
    for word in words:
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or word.split("=", 1)[0] in parser._option_string_actions:
            continue
        try:
            float(word)
        except ValueError:
            yield word


def build_parser() -> argparse.ArgumentParser:
    from mgrec.config import THRESHOLD_RULES, PostprocessConfig

    parser = _Parser(
        prog="mgrec",
        description="Micro-gesture online recognition: temporal detection of micro-gestures in long videos.",
        formatter_class=HelpFormatter,
        allow_abbrev=False,  # `--score 0.5` read as --score-threshold: an abbreviation breaks when an option is added
        epilog=_examples(
            "mgrec demo                                   # build the demo data, train, evaluate, report",
            "mgrec detect --help                          # the help of one command",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--threads", type=thread_count, default=None, help=THREADS_HELP)
    sub = parser.add_subparsers(metavar="COMMAND")

    data = _group(sub, "data", "convert and check datasets", examples=(
        "mgrec data convert SMG_ROOT --out data/smg/annotations.json",
        "mgrec data check smg/mgrec.yaml --balance",
    ))
    p = _command(data, "convert", "SMG label folders (or another tool's annotations JSON) -> annotations JSON "
                 "(ActivityNet style)", cmd_data_convert,
                 examples=(
                     "mgrec data convert SMG_ROOT --out data/smg/annotations.json",
                     "mgrec data convert SMG_ROOT --out annotations.json --splits train=1-30,val=31-35,test=36-40",
                     "mgrec data convert IMIGUE_ROOT --class-map classes.txt --out annotations.json",
                     "mgrec data convert thumos_anno.json --class-map category_idx.txt --out annotations.json",
                 ))
    p.add_argument("smg_root", metavar="INPUT", type=path_text,
                   help="folder of SMG samples (SampleXXXX/SampleXXXX_finelabels.csv), or an annotations JSON "
                        "(ActionFormer's, OpenTAD's) to write with its classes listed, in mgrec's form")
    # kept as written: Path("x/") drops the '/' that tells a folder meant (check_writable refuses it for a file)
    p.add_argument("--out", type=home_expanded, required=True, help="annotations JSON to write")
    p.add_argument("--fps", type=number,
                   help="frame rate for samples without a SampleXXXX_data.csv (default: read from that file); of a "
                        "JSON: for entries with no fps, or frame count and duration, of their own")
    p.add_argument("--splits", default=None,
                   help="SMG: subject numbers per subset (default: train=1-30,val=31-35,test=36-40); sample "
                        "folders without labels whose subject is in none (the challenge's test subjects) are left "
                        "out")
    p.add_argument("--class-map", type=path_text, default=None, metavar="FILE",
                   help="class names, one per line in label-id order (OpenTAD's class_map, category_idx.txt). SMG "
                        "folders: line k names the files' class k (default: SMG's 17); a JSON: where the file lists "
                        "none (default: its own classes, else its label ids, else the labels sorted by name)")
    p = _command(data, "check", "report every problem in a config's data, and suggest settings", cmd_data_check,
                 examples=(
                     "mgrec data check smg/mgrec.yaml --set data.annotations=data/smg/annotations.json",
                     "mgrec data check my_config.yaml --balance",
                 ))
    p.add_argument("config", metavar="CONFIG", type=path_text,
                   help="a YAML config, or the name of a shipped one (smg/mgrec.yaml, ...)")
    p.add_argument("--balance", "--augment", dest="balance", action="store_true",
                   help="also print the class histogram before/after class balancing (balance.method)")
    _add_set(p)

    p = _command(sub, "train", "train a detector", cmd_train, description=(
        "Train a detector into a run directory: config, checkpoints (best on val, last), the F1 score\n"
        "threshold tuned on val, and metrics.jsonl (fractions, one JSON object per epoch). Prints one line\n"
        "per epoch (losses, learning rate, time; val scores in percent when validated). With TensorBoard\n"
        "installed (pip install 'mgrec[tensorboard]') the same metrics go to RUN_DIR/tensorboard:\n"
        "tensorboard --logdir RUN_DIR/tensorboard."
    ), examples=(
        "mgrec train smg/mgrec.yaml --out runs/smg-mgrec --set data.annotations=data/smg/annotations.json "
        "--set data.features=data/smg/features/videomae_v2_g",
        "mgrec train smg/mgrec.yaml --out runs/smg-mgrec --resume",
        "mgrec train demo/mgrec.yaml --out runs/demo-x3 --seeds 3 --set data.annotations=... --set data.features=...",
        "mgrec train smg/mgrec_end_to_end.yaml --out runs/smg-e2e --set data.videos=SMG_VIDEOS "
        "--set backbone.weights=weights/videomae-v2-g   # end to end, adapters in a frozen VideoMAE",
    ))
    p.add_argument("config", metavar="CONFIG", type=path_text,
                   help="a YAML config, or the name of a shipped one (demo/mgrec.yaml, ...)")
    p.add_argument("--out", type=path_text, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    p.add_argument("--seeds", type=seed_count, default=1, metavar="N",
                   help="train N runs with seeds seed, seed+1, ... into OUT-seed<S>, then their ensemble into OUT "
                        "(mgrec ensemble; default 1: one run into OUT)")
    p.add_argument("--unlabeled", type=path_text, default=None, metavar="FOLDER",
                   help="feature files without annotations: a teacher run labels them and the run trains on them "
                        "too (sets pseudo_labels.unlabeled; see docs/config.md; default: none, labelled videos only)")
    _add_no_progress(p)
    _add_set(p)

    p = _command(sub, "ensemble", "make trained runs into one run directory (averaged outputs or fused detections)",
                 cmd_ensemble,
                 description=(
                     "Average the members' per-point class probabilities and boundary offsets (one decode, one\n"
                     "NMS) where they share classes, feature grid, network layout and post-processing (e.g. one\n"
                     "config, several seeds); fuse their detections where they do not (--fusion; auto says which\n"
                     "and why), and tune the ensemble's F1 score threshold on val. OUT is a run directory with\n"
                     "every member inside it: detect, evaluate, stream and report take it like any run (a\n"
                     "fused one's members each make and read their own features: detect --member M=FOLDER).\n"
                 ), examples=(
                     "mgrec ensemble runs/a runs/b runs/c --out runs/abc",
                 ))
    p.add_argument("runs", metavar="RUN_DIR", type=path_text, nargs="+", help="trained run directories")
    p.add_argument("--out", type=path_text, required=True, help="new run directory for the ensemble")
    p.add_argument("--fusion", choices=["auto", "outputs", "detections"], default="auto",
                   help="outputs: average the members' per-point outputs (one network layout, feature grid and "
                        "post-processing); "
                        "detections: fuse their ranked detections (any networks and inputs: an RGB run and a "
                        "skeleton run; members copied into OUT/members/); auto: outputs where the members allow it")

    p = _command(sub, "export", "write a run's network as an ONNX file (any video length), checked against PyTorch",
                 cmd_export,
                 description=(
                     "Write the network of a trained run as one ONNX file for other runtimes (onnxruntime, ...):\n"
                     "features (1, C, T) and a mask in, each pyramid level's class logits, offsets and mask out,\n"
                     "for any T that is a multiple of the largest stride. FILE.json beside it says how the run\n"
                     "feeds it and reads its outputs (standardisation, decoding, NMS, threshold, classes). The\n"
                     "file is checked against the PyTorch network with onnxruntime before it is kept. Needs\n"
                     "pip install 'mgrec[export]'."
                 ), examples=(
                     "mgrec export runs/demo-mgrec --out demo.onnx",
                 ))
    p.add_argument("run_dir", metavar="RUN_DIR", type=path_text, help="trained run directory")
    p.add_argument("--out", type=path_text, required=True,
                   help="the ONNX file to write (FILE.onnx; FILE.json beside it)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights of the run")

    p = _command(sub, "evaluate", "score a run on a split (writes RUN_DIR/eval_<split>.json)", cmd_evaluate,
                 description=(
                     "Detect every video of a split of the run's annotations and score it (F1 at the score\n"
                     "threshold tuned on val, mAP of the ranked list). Writes RUN_DIR/eval_<split>.json and\n"
                     "RUN_DIR/detections_<split>.json (the ranked list); with --checkpoint last,\n"
                     "eval_<split>_last.json and detections_<split>_last.json. With --online, every video is\n"
                     "streamed instead, as `mgrec stream` does, and its emissions scored (the online track):\n"
                     "RUN_DIR/online_<split>.json, with the latency and compute per update."
                 ), examples=(
                     "mgrec evaluate runs/demo-mgrec",
                     "mgrec evaluate runs/demo-mgrec --split test --tune-on val --checkpoint last",
                     "mgrec evaluate runs/demo-mgrec --online --lookahead 1",
                     "mgrec evaluate runs/copied --set data.features=/new/place/features   # the data moved",
                 ))
    _add_run_dir(p)
    p.add_argument("--set", dest="overrides", action=_AppendOverride, default=[], metavar="KEY=VALUE",
                   help="where the run's data lies for this call, when it moved: data.annotations=FILE, "
                        "data.features=FOLDER (repeatable; config.yaml is left as it is, the scores record the data "
                        "read; default: the run's config.yaml)")
    p.add_argument("--split", metavar="SPLIT", type=split_argument, default="test", help="the split to score")
    p.add_argument("--tune-on", metavar="SPLIT", type=split_argument, default=None,
                   help="re-tune the F1 score threshold on this split, e.g. val (default: the threshold tuned on "
                        "val during training)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights of the run")
    p.add_argument("--online", action="store_true",
                   help="stream every video of the split (a fresh stream each, the default hop and window) and score "
                        "what the streams emitted, at the run's threshold (default: offline detection)")
    p.add_argument("--lookahead", metavar="SECONDS", type=nonnegative_number, default=None,
                   help="--online: seconds after a gesture's end before it is final (default: 2, as stream)")
    _add_device(p)
    _add_precision(p)
    _add_no_progress(p)

    p = _command(sub, "score", "score a predictions file against annotations", cmd_score, description=(
        "Score predictions (any format `mgrec detect` writes: results JSON, CSV table, SMG label folders;\n"
        "or the JSON lines `mgrec stream` prints)\n"
        "against annotations. F1 counts the detections with score >= the threshold; mAP uses them all, so\n"
        "score a ranked list (`mgrec detect --all`) for mAP comparable to other tools."
    ), examples=(
        "mgrec score --gt annotations.json --pred detections.json --split test",
        "mgrec score --gt annotations.json --pred ranked.json --split test --tune-on val --json",
        "mgrec score --gt annotations.json --pred ranked.json --tune-on val --thresholds per_class",
        "mgrec score --gt annotations.json --pred other_tool_results.json --analysis analysis/",
    ))
    p.add_argument("--gt", type=path_text, required=True, help="annotations JSON")
    p.add_argument("--pred", type=path_text, required=True,
                   help="predictions: results JSON, CSV table, a folder of SMG-style CSVs, or the JSON lines of "
                        "mgrec stream")
    p.add_argument("--split", metavar="SPLIT", type=split_argument, default="test", help="the split to score")
    p.add_argument("--videos", metavar="ID[,ID...]", type=video_list, default=None,
                   help="score only these videos of the split (one streamed video, say; default: every video of "
                        "the split, those without predictions counted as all missed)")
    p.add_argument("--tune-on", metavar="SPLIT", type=split_argument, default=None,
                   help="choose the score threshold that maximises F1 on this split (default: use --score-threshold)")
    # any finite number: a predictions file may hold logits, not probabilities (and --tune-on may pick 5.0)
    p.add_argument("--score-threshold", metavar="T", type=finite_number, default=None,
                   help="F1 counts detections with score >= this (default: the threshold a run's ranked list from "
                        "`mgrec detect --all` records, else every detection of the file); not with --tune-on, which "
                        "chooses it")
    p.add_argument("--thresholds", choices=THRESHOLD_RULES, default="global",
                   help="with --tune-on: one threshold, or one per class as well (postprocess.thresholds: the bars a "
                        "per_class run uses, from its `detect --all` output)")
    p.add_argument("--threshold-shrinkage", type=nonnegative_number, default=None,
                   metavar="K", help="per_class: each class's threshold is pulled toward the global one, (n t_c + K t) "
                                     "/ (n + K), n its instances in the --tune-on split (default "
                                     f"{PostprocessConfig.threshold_shrinkage:g}, as postprocess.threshold_shrinkage)")
    p.add_argument("--fps", type=number, default=None,
                   help="frames per second of every video whose --gt entry has no fps (ActivityNet 1.3's files; "
                        "ActionFormer's default_fps)")
    p.add_argument("--tious", default="thumos",
                   help="the tIoU thresholds mAP is averaged over: thumos (0.3:0.1:0.7, the default, as evaluate), "
                        "activitynet (0.5:0.05:0.95), epic (0.1:0.1:0.5), or thresholds such as 0.3,0.5,0.7")
    p.add_argument("--json", action="store_true", help="print the scores as JSON (fractions, not percent)")
    p.add_argument("--analysis", type=home_expanded, default=None, metavar="FOLDER",
                   help="also write the error analysis of the scored split into FOLDER, as `mgrec analyze` does for a "
                        "run: DETAD's false-negative, false-positive and sensitivity figures of the ranked list and "
                        "of the hard set, the F1-threshold and PR curves, and their numbers (<split>_analysis.json); "
                        "default: scores only")

    p = _command(sub, "compare", "several runs' scores, mean ± std over each config's seeds", cmd_compare,
                 description=(
        "Runs' scores on one split side by side: the runs are grouped by their training config with the seed\n"
        "left out (`train --seeds N` makes one group; ensembles of as many runs of one config another), and\n"
        "each group is one row, named by what sets its config apart, with the mean ± sample std over its runs\n"
        "of F1, F1 by the MiGA rule, average mAP, mAP at each tIoU and each class's F1 (rarest first). Each\n"
        "run must be evaluated on the split first (`mgrec evaluate RUN --split SPLIT`), all on the same videos."),
                 examples=("mgrec compare runs/paper-seed* runs/default-seed*",
                           "mgrec compare runs/a-seed1 runs/a-seed2 runs/b-seed1 runs/b-seed2 --split val --json"))
    p.add_argument("run_dirs", metavar="RUN_DIR", type=path_text, nargs="+",
                   help="run directories (`mgrec train --out`)")
    p.add_argument("--split", metavar="SPLIT", type=split_argument, default="test",
                   help="the split whose scores are compared (eval_<split>.json of each run)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="whose evaluation: `mgrec evaluate --checkpoint last` writes its own scores")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (fractions, not percent)")

    p = _command(sub, "detect", "detect micro-gestures in feature files (or videos)", cmd_detect, description=(
        "Detect micro-gestures in feature files or videos (videos are turned into features with the run's\n"
        "recipe first). By default the HARD SET is written: the detections with score >= the F1 threshold\n"
        "tuned on val, what a challenge submission or a user wants. Its mAP is lower than that of the\n"
        "ranked list; to score mAP with this or another tool (ActivityNet, DETAD), write the ranked list\n"
        "with --all. The JSON file's \"mgrec\" block records which set it holds."
    ), examples=(
        "mgrec detect runs/demo-mgrec features/ --out detections.json",
        "mgrec detect runs/demo-mgrec video.mp4 --out ranked.json --all",
        "mgrec detect runs/demo-mgrec videos/clip.mp4 --format srt --out videos/   # videos/clip.srt",
        "mgrec detect runs/fusion acc/ --stream gyro=other/gyro --out detections.json",
        "mgrec detect runs/rgb+pose video.mp4 --out detections.json   # each member makes its own features",
        "mgrec detect runs/rgb+pose rgb/ --member 1=pose/ --out detections.json",
    ))
    _add_run_dir(p)
    p.add_argument("inputs", metavar="INPUT", nargs="+", type=file_input,
                   help="feature files, folders of them, or video files (a run "
                        "with several data.streams: the grid stream's files)")
    _add_stream_folders(p)
    _add_member_folders(p)
    p.add_argument("--out", type=home_expanded, required=True,  # as written
                   help="output file (a folder for --format smg, srt, vtt)")
    p.add_argument("--format", choices=["json", "csv", "smg", "srt", "vtt"], default=None,
                   help="results JSON (ActivityNet style), one CSV table, SMG-style label CSVs per video, or "
                        "subtitles per video (OUT/<video>.srt or .vtt: the detections over the video in a player) "
                        "(default: csv for an --out ending .csv, else json)")
    p.add_argument("--all", action="store_true",
                   help="write the ranked list (every detection, for mAP) instead of the hard set "
                        "(default: the hard set, score >= the threshold tuned on val)")
    p.add_argument("--onnx", type=path_text, default=None, metavar="FILE.onnx",
                   help="run the network from this file of `mgrec export RUN` in onnxruntime (float32, CPU; refused "
                        "if exported from other weights), recorded in the JSON file (default: none, PyTorch)")
    p.add_argument("--keep-features", type=path_text, default=None, metavar="FOLDER",
                   help="videos: keep the features made from them in FOLDER (<video>.npy and its sidecar, as `mgrec "
                        "extract` writes them; a run with several streams: FOLDER/<stream>/; a detection-level "
                        "ensemble: FOLDER/members/<m>/), to score, stream or detect again without decoding; features "
                        "already there of the run's recipe are reused "
                        "(default: made in a temporary folder, removed after)")
    _add_fps(p)
    _add_device(p)
    _add_precision(p)
    _add_no_progress(p)

    p = _command(sub, "stream", "online recognition of a stream of features or video (JSON lines, or SMG label files)",
                 cmd_stream,
                 description=(
                     "Replay a feature file (or a video, its features made as its frames are decoded) as a live\n"
                     "stream: one JSON line per gesture on stdout as soon as it is final, with the keys of the\n"
                     "results JSON (segment, segment(frames), label, label_id, score) plus video, emitted_at,\n"
                     "latency and compute_ms.\n"
                     "A summary line (gestures, updates, compute per update) ends each video's stream on stderr.\n"
                     "Several files or folders are streamed one after another, each as its own stream; with\n"
                     "--format smg their gestures are written as SMG label files (the online track's submission)."
                 ), examples=(
                     "mgrec stream runs/smg-mgrec features/Sample0036.npy --realtime",
                     "mgrec stream runs/demo-mgrec video.mp4 --lookahead 1 > gestures.jsonl",
                     "mgrec stream runs/video-run -   # piped in: ffmpeg -f v4l2 -i /dev/video0 -f matroska - | ...",
                     "mgrec stream runs/video-run rtsp://camera.local:554/stream1 --wall-clock",
                     "mgrec stream runs/smg-mgrec test_features/ --format smg --out online_submission/",
                 ))
    _add_run_dir(p)
    p.add_argument("inputs", metavar="INPUT", type=stream_input, nargs="+",
                   help="feature files or folders of them (or videos, streamed as decoded; - a video container "
                        "piped on standard input, alone, e.g. from ffmpeg -f matroska -; a URL, e.g. rtsp://, "
                        "http(s)://, read from the network as it arrives, alone), each replayed as its own "
                        "stream, in turn (a run with several data.streams: the grid stream's files)")
    p.add_argument("--format", choices=["jsonl", "smg"], default="jsonl",
                   help="jsonl: one JSON line per gesture on stdout, as it is final (the default); smg: the "
                        "gestures of every video as SMG label files in --out (OUT/VIDEO/VIDEO_finelabels.csv, "
                        "each written as its video's stream ends; OUT is a set once the last is)")
    p.add_argument("--out", type=path_text, default=None, metavar="FOLDER",
                   help="--format smg: the folder of the label files, one holding none yet, or one the same "
                        "command left unfinished (Ctrl-C, a kill): it streams the videos that have no file there "
                        "(default: none, for JSON lines on stdout)")
    _add_stream_folders(p)
    _add_member_folders(p)
    p.add_argument("--lookahead", metavar="SECONDS", type=nonnegative_number, default=2.0,
                   help="seconds after a gesture's end before it is final")
    p.add_argument("--realtime", action="store_true", help="replay at the video's rate instead of as fast as possible")
    p.add_argument("--wall-clock", action="store_true",
                   help="each JSON line also holds wall_time: the clock's time (UTC, ISO 8601) the gesture was "
                        "reported at, for a live source (a camera piped in as -, a URL, or --realtime)")
    p.add_argument("--hop", metavar="STEPS", type=positive_int, default=None,
                   help="feature steps per update (default: about 1 s of features)")
    p.add_argument("--history", metavar="STEPS", type=positive_int, default=None,
                   help="feature steps of the window the network sees (default: data.max_seq_len // 8, or what "
                        "deciding a gesture needs if more: lookahead, a hop and the gesture; the summary prints it)")
    _add_fps(p)
    p.add_argument("--compile", action="store_true",
                   help="compile the network for the window first (torch.compile; about a minute, needs g++): "
                        "about half the compute per update")
    p.add_argument("--onnx", type=path_text, default=None, metavar="FILE.onnx",
                   help="run the network from this file of `mgrec export RUN` in onnxruntime (float32, CPU; refused "
                        "if exported from other weights): no compiling, 0.63x the compute per update of the "
                        "PyTorch network on the demo, as compiled (default: none, PyTorch)")
    _add_device(p)
    _add_precision(p)

    p = _command(sub, "extract", "video files (or SMG skeleton CSVs) -> per-window features + sidecars", cmd_extract,
                 examples=(
                     "mgrec extract videos/ --out features/efficientnet",
                     "mgrec extract SMG_ROOT --backbone skeleton --out features/skeleton",
                     "mgrec extract videos/ --backbone pose --out features/pose   # as .venv-pose/bin/mgrec",
                 ))
    p.add_argument("inputs", metavar="VIDEO", nargs="*", type=file_input,
                   help="video files or folders (skeleton: *_skeleton.csv)")
    p.add_argument("--out", type=path_text, required=True, help="features folder")
    p.add_argument("--run", dest="from_run", type=path_text, default=None, metavar="RUN_DIR",
                   help="an end-to-end run (data.videos): write the features its detector reads, its backbone with "
                        "its trained adapters, for feature-based training (--backbone, --weights, --window, "
                        "--stride, --size and --batch then come from the run; default: none)")
    p.add_argument("--checkpoint", choices=["best", "last"], default=None,
                   help="with --run: whose adapters (default: best)")
    p.add_argument("--backbone", default=None,
                   choices=["efficientnet-lite0", "videomae", "skeleton", "pose"],
                   help="the feature network (default: efficientnet-lite0; skeleton: joints of SMG skeleton CSVs; "
                        "pose: MediaPipe body and hand landmarks of any video, run with .venv-pose/bin/mgrec after "
                        "`make pose-env`)")
    p.add_argument("--weights", type=path_text, default=None,
                   help="videomae: a Hugging Face format folder (required); efficientnet-lite0: a state dict "
                        "(default: the packaged ImageNet weights)")
    from mgrec import extract as limits  # the ranges of the numbers below, checked as they are parsed

    p.add_argument("--window", type=_extract_number("window"), default=None,
                   help=f"frames per feature window, 1-{limits.MAX_WINDOW_FRAMES} (default: 16)")
    p.add_argument("--stride", type=_extract_number("stride"), default=None,
                   help=f"frames between window starts, 1-{limits.MAX_WINDOW_FRAMES} (default: 4)")
    p.add_argument("--size", type=_extract_number("size"), default=None,
                   help=f"frame size in pixels, {limits.MIN_FRAME_SIZE}-{limits.MAX_FRAME_SIZE} (default: the "
                        "backbone's)")
    p.add_argument("--frames-per-window", type=positive_int, default=None, metavar="N",
                   help="efficientnet-lite0: average N frames of each window, on frames consecutive windows share "
                        "(4 of 16 with stride 4: the network runs on a quarter of the frames; a recipe of its own, "
                        "recorded in the sidecars; default: every frame)")
    p.add_argument("--device", default=None, help=DEVICE_HELP + " (default: auto)")
    p.add_argument("--precision", default=None, choices=_precisions(),
                   help="the backbone's forward pass: auto (the default: bf16 on CUDA and on a CPU with AMX, "
                        "where it is 1.5-3.1x as fast; fp32 on other CPUs, also with AVX512-BF16 alone, where bf16 "
                        "was slower), fp32 or bf16 (emulated and much slower on a CPU without native bf16); "
                        "recorded in the sidecars, a recipe of its own")
    p.add_argument("--runtime", default=None, choices=["auto", "torch", "onnxruntime"],
                   help="what runs efficientnet-lite0: auto (the default: onnxruntime in fp32 on a CPU where onnx "
                        "and onnxruntime are installed, about twice torch's speed on a 2-core Xeon without AMX; "
                        "torch for bf16, on CUDA and for videomae), torch or onnxruntime; the same features up to "
                        "float rounding (not a recipe of its own)")
    p.add_argument("--batch", type=_extract_number("batch"), default=None,
                   help=f"network inputs per forward pass, 1-{limits.MAX_BATCH} (frames for efficientnet-lite0, "
                        "clips for videomae; default: 8)")
    p.add_argument("--fps", type=number, default=None,
                   help="skeleton CSVs only: frame rate (default: read from SampleXXXX_data.csv)")
    p.add_argument("--fuse", nargs="+", type=path_text, default=None, metavar="DIR",
                   help="instead of extracting: concatenate these feature folders (same videos, same grid) into "
                        "--out, the early-fusion shortcut (default: extract). Streams at other rates, or joined "
                        "in the model (model.fusion: sum, gated), go in the config as data.streams")
    _add_no_progress(p)

    p = _command(sub, "convert-videomae", "official VideoMAE V2 checkpoint -> Hugging Face format folder",
                 cmd_convert_videomae, examples=(
                     "mgrec convert-videomae vit_g_hybrid_pt_1200e_k710_ft.pth weights/videomae-v2-g",
                 ))
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=path_text, help="the official .pth checkpoint")
    p.add_argument("out", metavar="OUT_DIR", type=path_text, help="folder to write (config.json, model.safetensors)")
    p.add_argument("--heads", type=positive_int, default=None,
                   help="attention heads (default: inferred for the known model sizes)")
    p.add_argument("--frames", type=positive_int, default=None,
                   help="frames per clip the model was trained on (default: 16)")
    p.add_argument("--size", type=positive_int, default=None,
                   help="frame size in pixels the model was trained on (default: 224)")

    p = _command(sub, "analyze", "error analysis figures (false negatives/positives, sensitivity)", cmd_analyze,
                 examples=("mgrec analyze runs/demo-mgrec", "mgrec analyze runs/demo-mgrec --split val",
                           "mgrec analyze runs/demo-mgrec --checkpoint last   # analysis/test_last_*"))
    _add_run_dir(p)
    p.add_argument("--split", metavar="SPLIT", type=split_argument, default="test", help="the split to analyse")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="whose detections: `mgrec evaluate --checkpoint last` writes its own "
                        "(RUN_DIR/analysis/<split>_last_*)")
    _add_annotations(p)

    p = _command(sub, "report", "one self-contained HTML report of a run, or of its detections on new videos",
                 cmd_report,
                 examples=("mgrec report runs/demo-mgrec", "mgrec report runs/demo-mgrec --split val --out val.html",
                           "mgrec report runs/demo-mgrec --detections detections.json   # detections.html"))
    _add_run_dir(p)
    # split, checkpoint and annotations: None when not given, so that --detections can refuse them
    p.add_argument("--split", metavar="SPLIT", type=split_argument, default=None,
                   help="the split to report (default: test)")
    p.add_argument("--checkpoint", default=None, choices=["best", "last"],
                   help="whose evaluation: `mgrec evaluate --checkpoint last` writes its own scores and detections "
                        "(report_<split>_last.html) (default: best)")
    p.add_argument("--detections", metavar="FILE", type=home_expanded, default=None,
                   help="a page of the run's detections on videos without ground truth instead: what `mgrec detect` "
                        "wrote (results JSON, CSV table or SMG label folder) or `mgrec stream` printed (JSON lines); "
                        "per class counts, scores and a timeline per video (default --out: FILE with .html)")
    p.add_argument("--fps", type=number, default=None,
                   help="--detections of an SMG label folder (frames): the videos' frame rate, for a run without "
                        "data.fps (whose videos may be of any rate; refused where data.fps sets it) (default: the "
                        "rate of the features the run trained on, its feature recipe's, said in a note)")
    # a string: Path() would drop a trailing "/" that says "folder"
    p.add_argument("--out", type=home_expanded, default=None,
                   help="HTML file to write, or a folder to write report_<split>.html into "
                        "(default: RUN_DIR/report_<split>.html)")
    _add_annotations(p)

    p = _command(sub, "demo", "build the real-motion demo data, train, evaluate and report", cmd_demo,
                 examples=("mgrec demo", "mgrec demo --config demo/dyfadet.yaml --out runs/demo-dyfadet --fresh"))
    p.add_argument("--out", type=path_text, default=Path("runs/demo-mgrec"), help="run directory")
    p.add_argument("--config", type=home_expanded, default=DEFAULT_DEMO_CONFIG,
                   help="a YAML file, or the name of a shipped config (demo/dyfadet.yaml, ...) "
                        "when no such file exists")
    p.add_argument("--cache", type=path_text, default=None,
                   help="where the demo data is built (default: $MGREC_CACHE/demo, else ~/.cache/mgrec/demo)")
    p.add_argument("--fresh", action="store_true",
                   help="delete an existing run directory first (only a run of mgrec's or an empty folder)")
    _add_no_progress(p)
    _add_set(p)
    return parser


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _parser_of(option: str, argv: list[str] | None, args: argparse.Namespace,
               parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser an unknown option was given to: the command's, unless it came before the command's name
    (`mgrec --bogus detect ...`)."""
    command = getattr(args, "command_parser", None)
    words = list(sys.argv[1:] if argv is None else argv)
    if command is None or option not in words:
        return command or parser
    name = command.prog.split()[1]  # "mgrec data check" -> "data"
    return parser if name not in words or words.index(option) < words.index(name) else command


def _command(sub, name: str, help: str, run, examples: tuple[str, ...], description: str | None = None):
    """A sub-command parser with the shared formatter, examples at the end of its help, and --threads."""
    p = sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                       formatter_class=HelpFormatter, epilog=_examples(*examples), allow_abbrev=False)
    # SUPPRESS: absent here, the value given before the command (or its default) stays.
    p.add_argument("--threads", type=thread_count, default=argparse.SUPPRESS, help=THREADS_HELP)
    p.set_defaults(run=run, command_parser=p)
    return p


def _group(sub, name: str, help: str, examples: tuple[str, ...]):
    """A command of actions (`mgrec data convert|check`): its own help when no action is given, and --threads."""
    p = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                       formatter_class=HelpFormatter, epilog=_examples(*examples), allow_abbrev=False)
    p.add_argument("--threads", type=thread_count, default=argparse.SUPPRESS, help=THREADS_HELP)
    p.set_defaults(group_parser=p)
    return p.add_subparsers(metavar="ACTION")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action=_AppendOverride, default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=3e-4 (repeatable, one value per key; default: "
                        "none)")


def _add_run_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", type=path_text, help="a run directory written by `mgrec train --out`")


def _add_fps(p: argparse.ArgumentParser) -> None:
    # Sidecars are optional: without this option, features without one (and a run without data.fps) could only
    # be detected after editing the run's config by hand.
    p.add_argument("--fps", type=number, default=None,
                   help="frame rate of the videos the features come from, for feature files without a sidecar when "
                        "the run's config has no data.fps (default: the sidecar's, else the run's data.fps, else the "
                        "video's fps in the run's annotations; refused when it contradicts the sidecar or data.fps, "
                        "noted when it differs from the rate of the run's training features)")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def _precisions() -> tuple[str, ...]:
    from mgrec.config import PRECISIONS

    return PRECISIONS


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=_precisions(), help=PRECISION_HELP)


def _add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when the output is not a terminal)")


def _add_annotations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", type=path_text, default=None,
                   help="annotations JSON (default: the run config's data.annotations)")


def closing_line_stream(out: str | Path | None):
    """Where a command's closing line ("wrote ...") goes: standard error when its output is a stream (standard
    output, a pipe: the data stays alone there), standard output when the output is standard error itself, or
    a file, or the command's own default (None)."""
    from mgrec.files import descriptor_named, is_stream

    if out is None:
        return sys.stdout
    if descriptor_named(out) == 2:
        return sys.stdout
    return sys.stderr if is_stream(out) else sys.stdout


def show_progress(args) -> bool:
    """A bar only when asked and on a terminal: in a log file its frames would mix with the lines."""
    return not getattr(args, "no_progress", False) and sys.stdout.isatty() and sys.stderr.isatty()


def _checked_run_dir(path: Path) -> Path:
    """The run directory argument, refused with a hint when it is a config (a common first mistake) or a file of a
    run (its config.yaml, run.json, a checkpoint: the run's folder named)."""
    if path.is_file():
        from mgrec.run import run_around

        around = run_around(path.parent)
        if around is not None:
            raise InputError(f"{path}: is a file of the run {around.path}, not a run directory: give that folder")
    if path.suffix.lower() in (".yaml", ".yml") and not path.is_dir():  # a run may be named run.yaml
        raise InputError(
            f"{path}: is a config file, not a run directory; train it first (mgrec train {shell_word(path)} --out "
            "RUN_DIR) and give the run directory"
        )
    if path.is_file():
        raise InputError(f"{path}: is a file, not a run directory (the folder `mgrec train --out` writes)")
    if not path.exists():  # said before any file inside it is named as missing
        raise InputError(f"{path}: not a run directory (no such folder)")
    nearby = _runs_near(path)
    if nearby:
        raise InputError(f"{path}: not a run directory (no config.yaml, run.json); {nearby}")
    return path


def _runs_near(folder: Path) -> str:
    """Where the run is, for a folder given as one that holds nothing of a run (the demo's data folder, a run's
    checkpoints/): the run it lies in, or the runs in it; '' for a folder with any file of a run (its own checks say
    what is missing)."""
    from mgrec.run import RunDir, holds_a_run, run_around

    run = RunDir(folder)
    if any(path.exists() for path in (run.config_path, run.format_path, run.member_path(0).parent)):
        return ""
    around = run_around(folder)
    if around is not None:
        return f"it lies in the run {around.path}: give that folder"
    try:
        inside = sorted(child for child in folder.iterdir() if child.is_dir() and holds_a_run(RunDir(child)))
    except OSError:
        return ""
    if inside:
        shown = ", ".join(str(child) for child in inside[:3]) + (", ..." if len(inside) > 3 else "")
        return f"the run{'s' if len(inside) > 1 else ''} in it: {shown}"
    if (folder / "annotations.json").is_file():
        return ("it holds annotations.json, data rather than a run: a run is the folder `mgrec train --out` or "
                "`mgrec demo --out` wrote (the demo's: runs/demo-mgrec)")
    return ""


def _checked_device(name: str) -> str:
    from mgrec.devices import resolve_device

    return str(resolve_device(name, what="--device"))


_CLASSES_SHOWN = 20  # class names `data convert` lists in its closing line


def _warn_of_subsets_no_config_reads(annotations, named_by: str) -> None:
    """`data convert`: a warning for each subset of the converted file that is none of the splits a config reads by
    default (`--splits ...,tset=36-40`; a JSON's 'unlabeled', 'dev', 'trainval': ActivityNet's and THUMOS's
    'validation' and 'testing' are val and test already), and for a file with no training video at all: written
    without a word, a config then trained on nothing or left the videos out, found only by a later `data check`.
    `named_by`: what named the subsets (--splits, or the JSON file)."""
    import difflib

    from mgrec.config import DataConfig

    defaults = DataConfig()
    standard = (defaults.train_split, defaults.val_split, defaults.test_split)
    others = [name for name in annotations.subsets() if name not in standard]
    for name in others:
        close = difflib.get_close_matches(name, standard, n=1, cutoff=0.6)
        print(f"warning: {named_by}: subset {name!r} ({counted(len(annotations.video_ids(name)), 'video')}) is none "
              f"of {', '.join(standard)}, the splits a config reads (data.train_split, data.val_split, "
              "data.test_split), so only a config that names it uses its videos"
              + (f"; did you mean {close[0]!r}?" if close else ""), file=sys.stderr)
    if not annotations.video_ids(defaults.train_split):
        # THUMOS trains on its 'validation' videos: a config left at its defaults finds no video to train on
        found = ", ".join(f"{name!r} ({len(annotations.video_ids(name))})" for name in annotations.subsets())
        print(f"warning: {named_by}: no video is in subset {defaults.train_split!r}, the one a config trains on by "
              f"default (data.train_split); the file's subsets are {found}: name the one to train on in the config "
              "(data.train_split, and data.val_split, data.test_split for the others)", file=sys.stderr)


def cmd_data_convert(args) -> None:
    from mgrec.data.annotations import (
        load_annotations,
        parse_subject_ranges,
        read_smg_labels,
        sample_range,
        save_annotations,
        skipped_sample_folders,
    )
    from mgrec.files import check_output, check_writable

    if not args.smg_root.exists():
        raise InputError(f"{args.smg_root}: no such file or folder (expected an SMG root folder, or an annotations "
                         "JSON)")
    from_json = args.smg_root.is_file()
    left_out: list[str] = []  # SMG sample folders without labels, in no split
    if from_json and args.splits is not None:
        raise InputError(f"--splits: {args.smg_root} is an annotations JSON, whose entries name their subsets; "
                         "--splits numbers SMG's subjects")
    check_output(args.out, reads=[args.smg_root, *([args.class_map] if args.class_map else [])])
    check_writable(args.out)
    if from_json:
        annotations = load_annotations(args.smg_root, default_fps=args.fps, class_map=args.class_map)
        # an empty database (`{"database": {}}`: a results file's skeleton, a filter that kept nothing) or one whose
        # videos name no class was written as an annotations file of 0 videos or 0 classes, exit 0
        if not annotations.videos:
            raise InputError(f"{args.smg_root} [database]: no videos; nothing to convert (a filter that kept none, "
                             "or not the annotations file?)")
        if not annotations.classes:
            raise InputError(f"{args.smg_root}: names no class (no instance has a label, and no top-level \"classes\" "
                             "list names one: test videos whose labels are withheld?); give the class list with "
                             "--class-map FILE, one class name per line in label-id order")
        # each entry checked as data check and score --gt check it: an instance starting after its video's end
        # (segments in frames, not seconds; a wrong duration) was written without a word, exit 0
        from mgrec.data.check import check_entries

        # and ids that every per-video writer refuses side by side (Sample0001, sample0001) or warns of (CON): the
        # file is written (its ids are the user's), said now rather than at the first extract or detect
        check_entries(annotations, args.smg_root, annotations.video_ids(),
                      warn=lambda line: print(f"warning: {line}", file=sys.stderr),
                      refused="is not converted (nothing written)", names=True)
    else:
        splits = parse_subject_ranges(args.splits or "train=1-30,val=31-35,test=36-40")
        annotations = read_smg_labels(args.smg_root, fps=args.fps, splits=splits, class_map=args.class_map,
                                      left_out=left_out)
    save_annotations(annotations, args.out)
    counts = ", ".join(f"{s} {len(annotations.video_ids(s))}" for s in annotations.subsets())
    total = sum(len(v) for v in annotations.segments.values())
    # the first classes, enough to see the order: ActivityNet's 200 names made one line of 2 kB
    shown = annotations.classes[:_CLASSES_SHOWN]
    more = (f", ... ({len(annotations.classes) - len(shown)} more)" if len(annotations.classes) > len(shown) else "")
    classes = (f", {counted(len(annotations.classes), 'class')} in id order: {', '.join(shown)}{more}"
               if from_json or args.class_map is not None else "")
    print(f"wrote {args.out}: {counted(total, 'instance')} in {counted(len(annotations.videos), 'video')} ({counts})"
          f"{classes}",
          file=closing_line_stream(args.out))
    _warn_of_subsets_no_config_reads(annotations, str(args.smg_root) if from_json else "--splits")
    if from_json:
        return
    if left_out:  # the challenge's test subjects come without labels; a typo in --splits would leave out others
        print(f"note: left out {len(left_out)} sample folder{'s' if len(left_out) > 1 else ''} without labels "
              f"({sample_range(left_out)}), in no split: the challenge's unlabelled test subjects?", file=sys.stderr)
    # --fps is for the samples without a _data.csv; one whose _data.csv gives another rate keeps its own, said here
    own_rate = [f"{info.video_id}: {info.fps:g}" for info in annotations.videos.values()
                if args.fps is not None and info.num_frames is not None and abs(info.fps - args.fps) > 1e-6]
    if own_rate:
        print(f"note: --fps {args.fps:g} is for the samples without a <sample>_data.csv; a sample's own _data.csv "
              f"keeps its rate, another in {part_of(len(own_rate), len(annotations.videos), 'video')} "
              f"({', '.join(own_rate[:3])}{', ...' if len(own_rate) > 3 else ''})", file=sys.stderr)
    guessed = [info.video_id for info in annotations.videos.values() if info.num_frames is None]
    if guessed:  # `data check` then measured the features against a length that is no video's
        print(f"warning: {part_of(len(guessed), len(annotations.videos), 'video')} ({', '.join(guessed[:3])}"
              f"{', ...' if len(guessed) > 3 else ''}) {'has' if len(guessed) == 1 else 'have'} no <sample>_data.csv: "
              "their duration is taken from their last label, which a video outlasts, so `data check` and `train` "
              "will refuse their features as too long; put each sample's _data.csv (one row numFrames,fps,maxDepth, "
              "as SMG ships it) beside its labels for its real length", file=sys.stderr)
    last_class = len(annotations.classes) - 1
    if total and not any(s.label_id == last_class for segments in annotations.segments.values() for s in segments):
        # A file numbering classes from 0 has no row of class 0 only by chance, but never one of class K.
        print(_no_last_class_warning(annotations.classes, args.class_map), file=sys.stderr)
    skipped = skipped_sample_folders(args.smg_root)
    if skipped:  # a backup beside its sample (Sample0003_old) is fair to leave out, but not without a word
        print(f"warning: {len(skipped)} folder(s) named like a sample but not SampleXXXX exactly were left out: "
              f"{', '.join(str(p) for p in skipped[:3])}{', ...' if len(skipped) > 3 else ''}", file=sys.stderr)


def _no_last_class_warning(classes: list[str], class_map: Path | None) -> str:
    """What no row of class K may mean: files numbering classes from 0; with a class map also a line too many in
    it, or a class of the map with no instance in these files."""
    count, last = len(classes), classes[-1]
    if class_map is None:
        return (f"warning: no label row has class {count} ({last}): if these files number classes from 0 to "
                f"{count - 1}, every instance is read as the class before its own; SMG label files number them 1 to "
                f"{count}")
    return (f"warning: no label row has class {count} ({last}, the last of the {counted(count, 'class')} of "
            f"{class_map}): if "
            f"these files number classes from 0 to {count - 1}, every instance is read as the class before its own "
            f"(label files number them 1 to {count}, class k named on line k of the class map); else {last} has no "
            "instance here, or the class map has a line too many")


def cmd_data_check(args) -> int:
    from mgrec.config import load_config
    from mgrec.data.check import check_dataset

    report = check_dataset(load_config(args.config, args.overrides), balance=args.balance, source=str(args.config))
    print(report.format())
    return 1 if report.errors else 0


def log_line(line: str) -> None:
    """A line of a long command's log (training's epochs): results on stdout, warnings and notes on stderr, as every
    command prints them."""
    print(line, file=sys.stderr if line.startswith(("warning:", "note:")) else sys.stdout)


def cmd_train(args) -> None:
    from mgrec.config import check_for_training, load_config
    from mgrec.devices import process_rank
    from mgrec.train.ensemble import train_seeds
    from mgrec.train.loop import train

    if args.unlabeled is not None:
        args.overrides = [*args.overrides, f"pseudo_labels.unlabeled={args.unlabeled}"]
    config = load_config(args.config, args.overrides)
    check_for_training(config)  # training asks it too; here before a backbone is built or --seeds counted from it
    out = Path(os.path.abspath(args.out))
    try:
        if args.seeds == 1:
            result = train(config, args.out, resume=args.resume, log=log_line, progress=show_progress(args),
                           inputs=[Path(args.config)], encoder=_end_to_end_encoder(config))
            print(result.summary())
            return
        members = train_seeds(args.config, args.overrides, out, args.seeds, resume=args.resume, log=log_line,
                              progress=show_progress(args))
    except (KeyboardInterrupt, Terminated) as exc:
        # said with the interruption: a stopped training (Ctrl-C, a scheduler's time limit) is continued, not redone
        raise type(exc)(_how_to_continue(out, config.seed, args.seeds)) from None
    rank = process_rank()[0]
    if rank != 0:  # under torchrun, rank 0 makes the ensemble alone (every process making it fought over its lock)
        print(f"process {rank}: trained the {len(members)} seeds; process 0 makes their ensemble {out}")
        return
    _make_ensemble(members, out)
    runs = " ".join(shell_word(run) for run in [*members, out])
    print(f"the seeds and their ensemble side by side, once each is evaluated: mgrec compare {runs}")


def _how_to_continue(out: Path, seed: int, seeds: int) -> str:
    """What continues a training stopped by Ctrl-C or SIGTERM, where a run kept a complete epoch: `--resume` (or
    nothing to say)."""
    from mgrec.run import RunDir

    if seeds == 1:
        kept = RunDir(out).can_resume()
        return "the run keeps its last complete epoch: the same command with --resume continues it" if kept else ""
    members = [out.with_name(f"{out.name}-seed{s}") for s in range(seed, seed + seeds)]
    if not any(RunDir(member).can_resume() for member in members):
        return ""
    return "the seeds' runs keep their last complete epochs: the same command with --resume continues them"


def _end_to_end_encoder(config):
    """End to end (data.videos): the config's VideoMAE with fresh adapters on this process's training
    device, after the memory plan of a training step is printed (and refused when it cannot fit)."""
    if not config.end_to_end:
        return None

    from mgrec.devices import process_device, process_rank
    from mgrec.extract.adapter_memory import check_training_memory
    from mgrec.extract.adapters import build_adapted_backbone

    device = process_device(config.train.device)  # under torchrun, each process its own GPU
    encoder = build_adapted_backbone(config, device)
    print(check_training_memory(config, encoder, device, processes=process_rank()[1]))
    return encoder


def cmd_ensemble(args) -> None:
    _make_ensemble([_checked_run_dir(run) for run in args.runs], args.out, args.fusion)


def _make_ensemble(runs: list[Path], out: Path, fusion: str = "outputs") -> None:
    from mgrec.evaluate.scoring import val_scores_phrase
    from mgrec.files import resolve_path
    from mgrec.infer.fused_ensemble import make_fused_ensemble
    from mgrec.run import RunDir, next_commands
    from mgrec.train.ensemble import averaging_refused, make_ensemble

    # Allowed (an ensemble of one run is the run; of a run twice, the run), but rarely what was meant.
    resolved = [resolve_path(run) for run in runs]
    for path in dict.fromkeys(resolved):
        if resolved.count(path) > 1:
            print(f"note: {path} is given {resolved.count(path)} times: it counts that many times in the ensemble",
                  file=sys.stderr)
    if len(set(resolved)) == 1:
        print("note: the ensemble has one distinct run: it detects as that run does", file=sys.stderr)
    why = averaging_refused(runs) if fusion == "auto" else None
    if fusion == "auto":
        fusion = "outputs" if why is None else "detections"
    make = make_ensemble if fusion == "outputs" else make_fused_ensemble
    result = make(runs, out, log=log_line)
    if why is not None:  # said once it worked: where fusing detections is refused too, its error says the same
        print(f"fusing detections: {why}")
    val = result.val_metrics
    tuned_on = (RunDir(result.run_dir).read_tuning() or {}).get("tuned_on")  # the members' data.val_split
    scores = (f"{tuned_on} {val_scores_phrase(val, tuned_on, val.get('class_thresholds'))}"
              if val else "no val split: the configured score threshold")
    print(f"ensemble of {len(result.members)} runs: {scores}\nrun directory: {result.run_dir}\n"
          f"{next_commands(result.run_dir)}")


def _note_no_splits_record(run, split: str) -> None:
    """A note where the run holds no record of the videos it trained and validated on: `split`'s videos are not
    checked against them (`RunDir.check_held_out`), which evaluate does for every run that has one."""
    words = run.no_splits_record()
    if words is not None:
        print(f"note: {words}: split {split}'s videos were not checked to be none of them (copy splits.json back "
              "from the run's first place to have them checked)", file=sys.stderr)


def _note_postprocess_changes(run) -> None:
    """A note where the run's config.yaml was edited after training in a way its tuned threshold does not know."""
    try:
        changes = run.postprocess_changed_since_tuning(run.read_config())
    except InputError:  # an unreadable run: loading it says so, after the command's own checks
        return
    if changes:
        print(f"note: {run.path}: {'; '.join(changes)} (edited since training?): the threshold tuned then is used "
              "as it is (restore the setting to use the run as tuned; `mgrec evaluate RUN --tune-on val` scores one "
              "evaluation at a threshold tuned for the settings now, and keeps none)", file=sys.stderr)


def cmd_export(args) -> None:
    from mgrec.infer.export import export_onnx

    print(export_onnx(_checked_run_dir(args.run_dir), args.out, args.checkpoint).describe())


def cmd_evaluate(args) -> None:
    from mgrec.config import canonical_subset, data_locations
    from mgrec.evaluate.f1 import threshold_phrase
    from mgrec.evaluate.scoring import check_tuning_split, format_score_table
    from mgrec.infer.evaluate_run import DATA_LOCATIONS, evaluate_run
    from mgrec.run import RunDir

    check_tuning_split(args.tune_on, args.split)  # before an end-to-end run's features are extracted
    args.data = data_locations(args.overrides, "mgrec evaluate", DATA_LOCATIONS)
    if args.online:
        return _evaluate_online(args)
    if args.lookahead is not None:
        raise InputError("--lookahead is the streams' (--online); offline detection sees every video whole")
    run_dir = _checked_run_dir(args.run_dir)
    run = RunDir(run_dir)
    run.check_outputs(files=[run.eval_path(args.split, args.checkpoint),
                             run.detections_path(args.split, args.checkpoint)])
    if not args.tune_on:
        _note_postprocess_changes(run)
    device = _checked_device(args.device)
    features = _end_to_end_features(run_dir, [args.split, args.tune_on], args.checkpoint, device, show_progress(args),
                                    args.data)
    result = evaluate_run(run_dir, split=args.split, tune_on=args.tune_on, checkpoint=args.checkpoint,
                          device=device, progress=show_progress(args), precision=args.precision, features=features,
                          data=args.data)
    print(format_score_table(result))
    tuned = result["threshold_tuned_on"]
    print(f"evaluated {counted(result['num_videos'], 'video')} of split {args.split} with checkpoint {args.checkpoint} "
          f"and {result['inference_precision']} inference ("
          f"{threshold_phrase(result['score_threshold'], result.get('class_thresholds'))}, "
          f"{f'tuned on {tuned}' if tuned else 'from the config'}); "
          f"wrote {run.eval_path(args.split, args.checkpoint)} and {run.detections_path(args.split, args.checkpoint)}")
    _note_no_splits_record(run, args.split)
    train_split = run.read_config().data.train_split
    if args.split == canonical_subset(train_split):  # ActionFormer's THUMOS layout trains on "validation"
        print(f"note: split {args.split} is the split this run trained on (data.train_split {train_split!r}): its "
              "scores say how closely the run fits the videos it learnt from, not how it does on new ones",
              file=sys.stderr)


def _evaluate_online(args) -> None:
    """`mgrec evaluate --online`: the split streamed, its emissions scored, beside the offline scores if written."""
    from mgrec.evaluate.scoring import format_score_table
    from mgrec.infer.evaluate_run import evaluate_online
    from mgrec.run import RunDir, checkpoint_option, same_scored_set, scored_sets_words

    if args.tune_on:
        raise InputError("--tune-on re-tunes the offline threshold; a stream emits at the run's own threshold "
                         "(tuned on val at training): leave --tune-on out with --online")
    run_dir = _checked_run_dir(args.run_dir)
    run = RunDir(run_dir)
    run.check_outputs(files=[run.online_eval_path(args.split, args.checkpoint)])
    _note_postprocess_changes(run)
    device = _checked_device(args.device)
    features = _end_to_end_features(run_dir, [args.split], args.checkpoint, device, show_progress(args), args.data)
    lookahead = 2.0 if args.lookahead is None else args.lookahead
    result = evaluate_online(run_dir, split=args.split, lookahead=lookahead, checkpoint=args.checkpoint,
                             device=device, precision=args.precision, progress=show_progress(args), features=features,
                             threads=streaming_threads(args), data=args.data)
    print(format_score_table(result))
    online = result["online"]
    latency, compute = online["latency_seconds"], online["compute_ms_per_update"]
    said = "no gesture was decided before its video ended" if latency["mean"] is None else (
        f"latency after a gesture's end mean {latency['mean']:.2f} s, p95 {latency['p95']:.2f} s "
        f"({online['decided_while_streaming']} gestures; {online['decided_at_the_end']} more decided by the videos' "
        "ends)")
    print(f"streamed {counted(result['num_videos'], 'video')} of split {args.split} with checkpoint {args.checkpoint}, "
          f"lookahead {online['lookahead']:g} s, window {online['window_seconds']:.1f} s: {said}; compute per update "
          f"mean {compute['mean']:.1f} ms ({result['inference_precision']}, {counted(online['threads'], 'thread')}); "
          f"wrote {run.online_eval_path(args.split, args.checkpoint)}")
    _note_no_splits_record(run, args.split)
    offline = run.eval_path(args.split, args.checkpoint)
    if offline.is_file():
        scores = run.read_eval(args.split, run.read_classes(), args.checkpoint)
        if not same_scored_set(scores, result):
            # the split's videos or labels changed since it was written: side by side, the two scored other sets
            print(f"note: {offline} was scored on another set of split {args.split} ("
                  f"{scored_sets_words(scores, result, ('offline', 'streamed'))}); run `mgrec evaluate "
                  f"{shell_word(run_dir)} --split {shell_word(args.split)}{checkpoint_option(args.checkpoint)}` again "
                  "to set the offline scores beside the streamed ones")
        else:
            print(f"offline ({offline.name}): F1 {100 * scores['f1']:.2f}, MiGA rule {100 * scores['f1_miga']:.2f}; "
                  f"streamed: F1 {100 * result['f1']:.2f}, MiGA rule {100 * result['f1_miga']:.2f}")


def cmd_compare(args) -> None:
    import json

    from mgrec.evaluate.compare import compare_runs, format_comparison

    comparison = compare_runs([_checked_run_dir(run_dir) for run_dir in args.run_dirs], args.split, args.checkpoint)
    print(json.dumps(comparison.to_json(), indent=1) if args.json else format_comparison(comparison))


def cmd_score(args) -> None:
    import json

    from mgrec.data.annotations import load_annotations
    from mgrec.data.check import check_entries
    from mgrec.evaluate.average_precision import parse_tious
    from mgrec.evaluate.scoring import check_threshold_options, check_tuning_split, format_score_table, score_file
    from mgrec.files import brief, counted
    from mgrec.smg_csv import checked_fps

    check_threshold_options(args.tune_on, args.thresholds, args.threshold_shrinkage, args.score_threshold)
    check_tuning_split(args.tune_on, args.split)  # as evaluate: no threshold chosen on the answers (before reading)
    tious = parse_tious(args.tious)
    fps = checked_fps(args.fps, "--fps")
    annotations = load_annotations(args.gt, default_fps=fps)
    own_fps = [v for v, info in annotations.videos.items() if fps is not None and info.fps_given]
    if own_fps:
        first = f"first: {brief(own_fps[0])} at {annotations.videos[own_fps[0]].fps:g}"
        if len(own_fps) == len(annotations.videos):
            raise InputError(f"--fps {fps:g} would not be used: every video of {args.gt} has its own fps ({first}), "
                             "which places its frames; leave --fps out")
        print(f"note: --fps {fps:g} places the frames of the videos of {args.gt} without an fps only; {len(own_fps)} "
              f"have their own ({first})", file=sys.stderr)
    # each entry scored (the split's, or its --videos, and the split tuned on) checked as data check checks it
    scored = annotations.video_ids(args.split)
    if args.videos is not None:
        scored = [video for video in scored if video in set(args.videos)]
    tuned = annotations.video_ids(args.tune_on) if args.tune_on is not None else []
    check_entries(annotations, args.gt, list(dict.fromkeys(scored + tuned)),
                  warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    if args.analysis is not None:  # before the work
        _check_analysis_folder(Path(args.analysis), args.split, reads=[args.gt, args.pred])
    result = score_file(annotations, args.gt, args.pred, args.split, tune_on=args.tune_on, thresholds=args.thresholds,
                        threshold_shrinkage=args.threshold_shrinkage, score_threshold=args.score_threshold, tious=tious,
                        note=lambda line: print(f"note: {line}", file=sys.stderr), videos=args.videos)
    print(json.dumps(result, indent=1) if args.json else format_score_table(result))
    if args.analysis is not None:
        paths = _analyse_predictions(annotations, args, result)
        only = "" if not result.get("videos") else f" ({counted(len(result['videos']), 'video')} of it, as scored)"
        print(f"wrote the error analysis of split {args.split}{only} into {args.analysis} "
              f"({counted(len(paths), 'file')})", file=sys.stderr)


def _check_analysis_folder(folder: Path, split: str, reads: list) -> None:
    """`score --analysis FOLDER`, before any work: not a folder of a run, not one that cannot be written, and no
    file there that the analysis's `<split>_*` files would replace unless an earlier analysis wrote them (the user's
    own files of those names, or symbolic links there, which would carry the writes onto what they name)."""
    from mgrec.files import check_output, check_writable
    from mgrec.report.html import refuse_replacing_files_not_an_analysis
    from mgrec.run import run_around

    check_output(folder, reads=reads, option="--analysis")
    inside = run_around(folder)
    if inside is not None:  # its analysis/ is `mgrec analyze`'s, of the run's own detections
        raise InputError(f"--analysis {folder} is inside the run {inside.path}, whose files are its own (`mgrec "
                         "analyze RUN` writes its analysis); choose a folder outside runs")
    check_writable(folder, is_dir=True)
    refuse_replacing_files_not_an_analysis(folder, split, f"--analysis {folder}")


def _analyse_predictions(annotations, args, result: dict) -> list[Path]:
    """`mgrec score --analysis`: the error analysis of the scored split of a predictions file (of its videos named
    by --videos, `result["videos"]`: the whole split's analysis beside the table of one video counted the others'
    gestures as missed), at the threshold it was scored at."""
    from mgrec.evaluate.predictions import load_predictions
    from mgrec.evaluate.scoring import restrict_to_videos
    from mgrec.report.html import write_error_analysis

    video_ids = result.get("videos") or annotations.split_video_ids(args.split, args.gt)
    sources = {"annotations": str(args.gt), "predictions": str(args.pred)}
    if result.get("videos"):
        sources["videos"] = result["videos"]
    predictions = load_predictions(args.pred, annotations.classes,
                                   fps_by_video={v: info.fps for v, info in annotations.videos.items()})
    return write_error_analysis(
        {v: annotations.segments.get(v, []) for v in video_ids}, restrict_to_videos(predictions, video_ids),
        {v: annotations.videos[v].duration for v in video_ids}, annotations.classes, args.split,
        result["score_threshold"], result.get("class_thresholds"), args.tune_on, Path(args.analysis),
        sources)


def _end_to_end_features(run_dir: Path, splits: list[str | None], checkpoint: str, device: str, progress: bool,
                         data: dict[str, str] | None = None) -> Path | None:
    """An end-to-end run's features of the videos of `splits`, made with the adapters of `checkpoint` into
    RUN_DIR/features_<checkpoint> (kept: a later call with the same checkpoint skips them); None for a
    run trained on feature files. `data`: `--set data.annotations=...` for this call."""
    from mgrec.data.annotations import load_annotations
    from mgrec.data.videos import find_video
    from mgrec.extract.jobs import extract_with_run
    from mgrec.run import RunDir

    run = RunDir(run_dir)
    config = run.read_config()
    if not config.end_to_end:
        return None
    if not Path(config.data.videos).is_dir():
        raise InputError(f"{run.config_path} [data.videos]: {config.data.videos}: no such folder (the run reads its "
                         "videos there); move them back, or record the new place with mgrec train CONFIG --out RUN "
                         "--resume --set data.videos=NEW")
    from mgrec.infer.evaluate_run import evaluate_remedy, moved_remedy
    from mgrec.run import run_data_path

    given = (data or {}).get("data.annotations")
    annotations = load_annotations(given or run_data_path(run_dir, "data.annotations", config.data.annotations,
                                                          evaluate_remedy(run_dir, "data.annotations"),
                                                          moved=moved_remedy(run_dir, "data.annotations")),
                                   default_fps=config.data.fps)
    ids = [video for split in splits if split is not None for video in annotations.video_ids(split)]
    videos = [find_video(Path(config.data.videos), video) for video in dict.fromkeys(ids)]
    out = Path(run_dir) / f"features_{checkpoint}"
    extract_with_run(run_dir, videos, out, checkpoint, device, progress)
    return out


def _add_member_folders(p: argparse.ArgumentParser) -> None:
    p.add_argument("--member", action="append", default=[], metavar="M=FOLDER",
                   help="a detection-level ensemble whose members read different features (an RGB and a skeleton "
                        "run): member M >= 1 (members/M/) reads each video's file from FOLDER, found by the video's "
                        "name (repeat per member; default: every member reads the files given, which are member "
                        "0's; videos are made into each member's features with its own recipe)")


def _add_stream_folders(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stream", action="append", default=[], metavar="NAME=FOLDER",
                   help="a run with several data.streams: read stream NAME's files (<prefix><video_id><ext>) from "
                        "FOLDER (repeat per stream; default: the folders in the run's config)")


# Names ending so name a file of one format, never a folder of files per video
_FILE_SUFFIXES = (".srt", ".vtt", ".json", ".jsonl", ".csv")


def _check_detect_out(out: Path, fmt: str, format_given: bool) -> None:
    """Refuse an --out whose name says another thing than what `detect` would write there: `--out clip.srt`
    without --format wrote a results JSON named clip.srt (no player reads it), and `--format srt --out clip.srt`
    made a folder clip.srt/ of subtitle files."""
    from mgrec.evaluate.subtitles import SUBTITLE_FORMATS

    suffix = Path(out).suffix.lower()
    if suffix in (".srt", ".vtt") and not format_given:
        raise InputError(f"--out {out}: subtitles are written one file per video, into a folder: "
                         f"--format {suffix[1:]} --out FOLDER (FOLDER/<video>{suffix}; the videos' own folder "
                         "puts each beside its video)")
    if fmt in ("smg", *SUBTITLE_FORMATS):
        _refuse_a_file_name_for_a_folder(out, fmt)


def _refuse_a_file_name_for_a_folder(out: Path, fmt: str) -> None:
    """`--format smg|srt|vtt --out sub.csv` (`detect`, `stream`) made a folder named as a file: refused, where no
    such folder is there already."""
    if Path(out).suffix.lower() in _FILE_SUFFIXES and not Path(out).is_dir():
        each = "VIDEO/VIDEO_finelabels.csv" if fmt == "smg" else f"<video>.{fmt}"
        raise InputError(f"--out {out}: --format {fmt} writes a folder of files, one per video ({each}), and "
                         f"{Path(out).name} names a file: give a folder (e.g. --out "
                         f"{'submission' if fmt == 'smg' else 'subtitles'}/)")


def cmd_detect(args) -> None:
    import tempfile
    from contextlib import nullcontext

    from mgrec.data.features import sidecar_path
    from mgrec.evaluate.subtitles import SUBTITLE_FORMATS, claim_subtitle_folder, subtitle_paths
    from mgrec.extract.detection_inputs import (
        feature_folders_read,
        inputs_for,
        kept_members_command,
        member_folders_given,
        stream_folders_read,
    )
    from mgrec.extract.jobs import is_video, videos_by_id
    from mgrec.files import check_output, check_writable, counted
    from mgrec.infer.detect import detect_files
    from mgrec.run import RunDir, refuse_a_stranger_among_members
    from mgrec.smg_csv import checked_fps

    format_given = args.format is not None
    if args.format is None:  # `--out x.csv` wrote JSON into x.csv without a word
        args.format = "csv" if str(args.out).lower().endswith(".csv") else "json"
    _check_detect_out(args.out, args.format, format_given)
    run_dir = _checked_run_dir(args.run_dir)
    device = _checked_device(args.device)
    fps = checked_fps(args.fps, "--fps")  # before any extraction
    given_members = member_folders_given(run_dir, args.member)
    sidecars = [sidecar_path(p) for p in args.inputs if Path(p).is_file()]  # read too, for the fps
    if args.format in SUBTITLE_FORMATS:
        # only new files OUT/<video>.srt are written (any file there is refused, the video's own subtitles
        # included), so OUT may be the videos' own folder: `--out videos/` puts clip.srt beside clip.mp4
        subtitle_paths([Path(p).stem for p in args.inputs if Path(p).is_file()], args.out, args.format)
        refuse_a_stranger_among_members(args.out)  # what check_output asks of every other output
    else:
        onnx = [] if args.onnx is None else [args.onnx, args.onnx.with_suffix(".json")]  # the file and its record
        folders = feature_folders_read(run_dir, args.stream, given_members)
        check_output(args.out, reads=[*args.inputs, *sidecars, *onnx, *folders],
                     protected=RunDir(run_dir).owned_files())
    check_writable(args.out, is_dir=args.format in ("smg", *SUBTITLE_FORMATS))  # before any extraction: fail early
    # a subtitle folder is held from here to its last file (`claim_subtitle_folder`): a second detect into it is
    # refused before its extraction, naming this one, where the two wrote their subtitles side by side
    claim = claim_subtitle_folder(args.out, args.format) if args.format in SUBTITLE_FORMATS else nullcontext()
    with claim:
        videos = [Path(path) for path in args.inputs if is_video(path)]
        if args.keep_features is not None:
            if not videos:
                from mgrec.data.features import list_feature_files

                # one of videos is said as such
                for folder in (Path(path) for path in args.inputs if Path(path).is_dir()):
                    list_feature_files(folder)
                raise InputError("--keep-features keeps the features made from videos; the inputs are feature files "
                                 "already: leave it out")
            check_output(args.keep_features, reads=args.inputs, protected=RunDir(run_dir).owned_files(),
                         option="--keep-features")
            _refuse_an_output_named_as_kept_features(args.out, args.keep_features, videos)
            check_writable(args.keep_features, is_dir=True)
        # its checks (other weights, an ensemble, bf16) before any video is turned into features
        if args.onnx is not None:
            from mgrec.infer.export import OnnxNetwork

            OnnxNetwork.detector(run_dir, args.onnx, device, args.precision)
        _note_postprocess_changes(RunDir(run_dir))
        failed: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mgrec-features-") as scratch:
            made_in = Path(scratch) if args.keep_features is None else args.keep_features
            made = inputs_for(run_dir, args.inputs, made_in, given_members, device=device, progress=show_progress(args),
                              failed=failed)
            inputs, extracted, reused = made.inputs, made.stream_folders, made.reused
            member_folders, member_streams = made.member_folders, made.member_stream_folders
            if not inputs:
                raise InputError("no input could be read, nothing was written:\n  " + "\n  ".join(failed))
            # a video's subtitles are named as the video is (players pair clip_color.srt with clip_color.mp4)
            videos = videos_by_id(args.inputs)
            names = {video: path.stem for video, path in videos.items()}
            not_extracted = len(failed)
            summary = detect_files(run_dir, inputs, args.out, fmt=args.format, ranked=args.all, device=device,
                                   progress=show_progress(args), precision=args.precision,
                                   stream_folders=stream_folders_read(run_dir, args.stream, extracted), fps=fps,
                                   subtitle_names=names, failed=failed, member_folders=member_folders,
                                   member_stream_folders=member_streams, onnx=args.onnx,
                                   videos=videos)
        # Detections written to standard output (--out /dev/stdout) are followed by nothing else there.
        print(summary.describe(), file=closing_line_stream(args.out))
        if args.keep_features is not None:
            kept = sum(1 for path in args.inputs if is_video(path)) - not_extracted
            there = (f", {len(reused)} of them there already (the same recipe: reused, not made again)" if reused
                     else "")
            # each member's in KEPT/members/<m>/, as the ensemble holds its members
            if RunDir(run_dir).fuses_detections():
                reads = (f"each member's in {args.keep_features / 'members'}/<m>/: "
                         f"{kept_members_command(run_dir, args.keep_features, given_members)}")
            else:
                reads = (f"`mgrec stream RUN {args.keep_features}` or `mgrec detect RUN {args.keep_features}` reads "
                         "them")
            print(f"kept the features of {counted(kept, 'video')} in {args.keep_features}{there} ({reads})",
                  file=sys.stderr)
        if failed:  # the others' detections are written: an overnight batch keeps its work, and says what is missing
            # a label set without a planned video's file stays unfinished (`LabelSet.end`): what finishes it
            finish = (f" ({args.out} stays marked unfinished, which `mgrec score` refuses: make them readable and run "
                      "the same command again, which keeps the label files written and detects only them; or detect "
                      "the others into an empty folder)" if summary.missing else "")
            raise InputError(f"{len(failed)} input(s) could not be read, and their detections are not "
                             f"in {args.out}{finish}:\n  " + "\n  ".join(failed))


def _refuse_an_output_named_as_kept_features(out: Path, kept: Path, videos: list[Path]) -> None:
    """`--out` inside `--keep-features` named as a video's features or sidecar (`K/clip.json`): extraction wrote the
    sidecar there, and the detections then replaced it (the next reuse refused the folder)."""
    from mgrec.data.videos import video_id
    from mgrec.files import resolve_path

    target = resolve_path(out)
    if resolve_path(kept) in target.parents and target.suffix.lower() in (".json", ".npy", ".npz"):
        named = [video_id(video) for video in videos if target.stem.endswith(video_id(video))]
        if named:
            raise InputError(f"--out {out}: the name of video {named[0]!r}'s features or their sidecar, which "
                             f"--keep-features writes in {kept}: choose another name or folder")


def cmd_stream(args) -> int:
    import tempfile

    from mgrec.extract.detection_inputs import Inputs, inputs_for, member_folders_given, stream_folders_read
    from mgrec.extract.jobs import is_video, videos_by_id
    from mgrec.extract.live import LiveFeatures, arrives_once, described, live_recipe_problem
    from mgrec.files import check_output, counted
    from mgrec.infer.stream import ONNX_AND_COMPILE, StreamInterrupted, stream_files
    from mgrec.run import RunDir
    from mgrec.smg_csv import checked_fps

    if (args.format == "smg") != (args.out is not None):
        raise InputError("--out is the folder of --format smg's label files: give both, or neither (JSON lines go to "
                         "stdout: `> gestures.jsonl` keeps them)")
    if args.wall_clock and args.format == "smg":
        raise InputError("--wall-clock puts the time of each report into the JSON lines; --format smg's label files "
                         "hold no time of report: leave one of them out")
    run_dir = _checked_run_dir(args.run_dir)
    member_folders = member_folders_given(run_dir, args.member)
    device = _checked_device(args.device)
    fps = checked_fps(args.fps, "--fps")  # before any extraction
    if args.onnx is not None:  # its checks (other weights, an ensemble, bf16, --compile) before any video is made
        from mgrec.infer.export import OnnxNetwork

        if args.compile:
            raise InputError(ONNX_AND_COMPILE)
        OnnxNetwork.detector(run_dir, args.onnx, device, args.precision)
    if args.out is not None:
        _refuse_a_file_name_for_a_folder(args.out, args.format)
        check_output(args.out, reads=[path for path in args.inputs if not arrives_once(path)],
                     protected=RunDir(run_dir).owned_files())
    _note_postprocess_changes(RunDir(run_dir))  # a stream emits at the tuned threshold too
    received = []

    def end_the_session(signum, frame):  # SIGTERM ends a live session as Ctrl-C does: pending gestures decided
        received.append(signum)
        raise KeyboardInterrupt

    ended = []

    def video_ended(summary) -> None:  # stderr: stdout stays pure JSON lines for whatever reads them
        # the run's notes (shifted passes, normalisation) once: they are the same for every video
        print(terminal.visible(summary.describe(notes=not ended)), file=sys.stderr)
        ended.append(summary)

    videos = [path for path in args.inputs if arrives_once(path) or is_video(path)]
    # A video streams as it is decoded, its features made window by window, where one backbone makes the run's
    # features; else it is turned into features whole first (several streams, pose, an end-to-end run).
    whole_first = None if not videos else (
        "each member of the ensemble makes its own" if RunDir(run_dir).fuses_detections()
        else live_recipe_problem(run_dir))
    arriving = [path for path in args.inputs if arrives_once(path)]
    if arriving and (len(args.inputs) > 1 or whole_first is not None):
        raise InputError(f"{described(arriving[0])} is streamed as it arrives, alone: "
                         + ("give it without other inputs" if len(args.inputs) > 1 else
                            f"{run_dir}'s features cannot be made so ({whole_first}); save the video and give its "
                            "file"))
    live = LiveFeatures(run_dir, device) if videos and whole_first is None else None
    if live is not None:
        print(f"streaming {counted(len(videos), 'video')} as decoded: features made window by window with the run's "
              f"recipe ({live.model.name}, its network run in {live.model.runtime})", file=sys.stderr)
    elif videos:  # minutes of silence before the first line, for a long video, without this
        print(f"turning {counted(len(videos), 'video')} into features with the run's recipe first ({whole_first}); "
              "the stream starts once they are made", file=sys.stderr)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="mgrec-features-") as scratch:
        made = (Inputs(args.inputs, {}, None, None, []) if live is not None else
                inputs_for(run_dir, args.inputs, Path(scratch), member_folders, device=device))
        previous = signal.signal(signal.SIGTERM, end_the_session)
        try:
            summaries = stream_files(
                run_dir,
                made.inputs,
                lookahead=args.lookahead,
                realtime=args.realtime,
                hop=args.hop,
                history=args.history,
                threads=streaming_threads(args),
                compile=args.compile,
                device=device,
                precision=args.precision,
                stream_folders=stream_folders_read(run_dir, args.stream, made.stream_folders),
                fps=fps,
                smg_out=args.out,
                on_video_end=video_ended,
                live=live,
                wall_clock=args.wall_clock,
                onnx=args.onnx,
                member_folders=made.member_folders,
                member_stream_folders=made.member_stream_folders,
                # features made here of videos: their label files recorded as the videos' (none decoded live)
                videos=None if live is not None else videos_by_id(args.inputs),
            )
        except StreamInterrupted as stopped:  # what had arrived was decided and written: the summary said where
            # counted by video, not by input: one folder of 40 videos stopped at its 2nd said nothing of the 38 others
            # the video it stopped in named first: "the videos after the interrupted one" left the reader to find
            # which one that was among the summaries above
            left = stopped.not_streamed
            # a resumed SMG folder's videos streamed by the earlier command count too: "1 of 2: 0 streamed before it"
            # of a folder of 3 was said beside "OUT holds the label files of the 1 video streamed to its end"
            earlier = stopped.streamed_earlier
            before = len(stopped.streamed) + earlier
            by_earlier = f", {earlier} of them by the command this one resumed" if earlier else ""
            if stopped.summary is not None:
                total = before + 1 + len(left)
                said = [f"in video {stopped.summary.video_id!r} ({before + 1} of {total}: {before} streamed to the end "
                        f"before it{by_earlier})"]
            else:  # between two videos (the next one opening, a label file written): none was in progress
                total = before + len(left)
                said = [f"{'between videos' if left else 'after the last video'} ({before} of {total} streamed to "
                        f"the end{by_earlier}, none in progress)"]
            if left:
                which = "after it" if stopped.summary is not None else "left"
                said.append(f"the {counted(len(left), 'video')} {which} {'was' if len(left) == 1 else 'were'} "
                            f"not streamed ({', '.join(left[:3])}{', ...' if len(left) > 3 else ''})")
            if args.out is not None:  # each finished video's file is kept; the same command streams the others
                kept = stopped.label_files
                # stopped while a video's label file was written: streamed to its end, but its file is not kept
                unwritten = [video for video in stopped.streamed if video not in kept]
                why = (f"{unwritten[0]!r} was streamed to its end, but stopped while its label file was written: it "
                       "is streamed again" if unwritten else "no video was streamed to its end")
                holds = (f"no label file yet ({why})" if not kept else
                         f"the label files of the {counted(len(kept), 'video')} streamed to "
                         f"{'its' if len(kept) == 1 else 'their'} end{f' ({why})' if unwritten else ''}")
                again = ("the same command again streams the others into it" if left or unwritten else
                         "the same command again marks it finished")
                if stopped.summary is not None:
                    again += ", the interrupted one from its start"
                said.append(f"{args.out} holds {holds} and is marked unfinished (`mgrec score` refuses it): {again}")
            # one video's summary said it was interrupted, and where; between videos no summary said anything
            if total > 1 or args.out is not None or stopped.summary is None:
                print(terminal.visible(f"stopped {said[0]}: {', and '.join(said[1:]) or 'it was the last'}"),
                      file=sys.stderr)
            return 128 + int(received[0] if received else signal.SIGINT)
        except KeyboardInterrupt:  # before the stream started, or a second signal while it ended
            if not received:
                raise
            print("mgrec: terminated", file=sys.stderr)
            return 128 + int(received[0])
        finally:
            signal.signal(signal.SIGTERM, previous)
    if len(summaries) > 1 or args.out is not None:
        where = "on stdout" if args.out is None else f"into {args.out} as SMG label files"
        print(f"streamed {counted(len(summaries), 'video')}: {counted(sum(s.emitted for s in summaries), 'gesture')} "
              f"written {where}", file=sys.stderr)
    return 0


def _extract_number(name: str):
    """The parser of one of `mgrec extract`'s whole-number options (`mgrec.extract.NUMBER_RANGES`): refused on
    the command line with its range, before any work (`--size 0` was read as the default and `--size 100000`
    blamed the video), by the rule the Python API asks too (`mgrec.extract.number_problem`)."""
    from mgrec.extract import number_problem

    def parse(text: str) -> int:
        try:
            value = whole_number(text.strip())  # ASCII digits, as every number on the command line
        except ValueError:
            value = text
        problem = number_problem(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def cmd_extract(args) -> None:
    from mgrec.extract.jobs import DEFAULT_BACKBONE, extract, fuse_features
    from mgrec.files import check_output

    check_output(args.out)  # a features folder, not a run's (nor a folder holding one's files)
    recipe = {"--backbone": args.backbone, "--weights": args.weights, "--window": args.window, "--stride": args.stride,
              "--size": args.size, "--batch": args.batch, "--fps": args.fps,
              "--frames-per-window": args.frames_per_window, "--precision": args.precision}
    if args.fuse:
        if args.inputs:
            raise InputError("--fuse takes feature folders; give no other inputs")
        # joining feature files reads no video: a recipe option, a run or a device would be ignored without a word
        ignored = [name for name, value in recipe.items() if value is not None]
        ignored += ["--run"] * (args.from_run is not None) + ["--checkpoint"] * (args.checkpoint is not None)
        ignored += ["--device"] * (args.device is not None) + ["--runtime"] * (args.runtime is not None)
        if ignored:
            verb = "does" if len(ignored) == 1 else "do"
            raise InputError(f"--fuse: {', '.join(ignored)} {verb} not apply (the folders' features are joined as they "
                             "are, each keeps its own recipe); give none of them")
        fused = fuse_features(args.fuse, args.out)
        for item in fused:
            print(f"{item.feature_path}: {item.num_features} steps (inputs {item.input_lengths})")
        print(f"fused {counted(len(fused), 'video')} from {counted(len(args.fuse), 'folder')} into {args.out}")
        return
    if not args.inputs:
        raise InputError("no inputs: give video files or folders")
    device, checkpoint = args.device or "auto", args.checkpoint or "best"
    if args.from_run is not None:
        from mgrec.extract.jobs import extract_with_run

        if given := [name for name, value in recipe.items() if value is not None]:
            raise InputError(f"--run: {', '.join(given)} come from the run's recipe; give none of them")
        if args.runtime == "onnxruntime":
            raise InputError("--runtime onnxruntime: an end-to-end run's backbone (VideoMAE with its adapters) runs "
                             "in torch only")
        results = extract_with_run(_checked_run_dir(args.from_run), args.inputs, args.out, checkpoint, device,
                                   show_progress(args))
    else:
        results = extract(args.inputs, args.out, backbone=args.backbone or DEFAULT_BACKBONE, weights=args.weights,
                          window=16 if args.window is None else args.window,
                          stride=4 if args.stride is None else args.stride, size=args.size, device=device,
                          batch=8 if args.batch is None else args.batch, fps=args.fps, progress=show_progress(args),
                          frames_per_window=args.frames_per_window, precision=args.precision, runtime=args.runtime)
    for result in results:
        print(f"{result.status}: {terminal.one_line(str(result.source))} -> "
              f"{terminal.one_line(str(result.feature_path))} ({result.num_features} windows)")
        for warning in result.warnings:  # each names its input already (`ExtractResult.warnings`)
            print(terminal.visible(f"warning: {warning}"), file=sys.stderr)
    extracted = sum(r.status == "extracted" for r in results)
    runtimes = sorted({r.runtime for r in results if r.runtime is not None})
    ran = f" (the network ran in {' and '.join(runtimes)})" if runtimes else ""
    print(f"{extracted} extracted{ran}, {len(results) - extracted} skipped (done earlier with this recipe): "
          f"{counted(len(results), 'input')} in {args.out}")


def cmd_convert_videomae(args) -> None:
    from mgrec.extract.videomae_convert import convert_videomae_v2
    from mgrec.files import check_output

    given = {"num_attention_heads": args.heads, "num_frames": args.frames, "image_size": args.size}
    overrides = {key: value for key, value in given.items() if value is not None}
    check_output(args.out)
    print(f"wrote {convert_videomae_v2(args.checkpoint, args.out, overrides)}")


def cmd_analyze(args) -> None:
    from mgrec.report.html import analysis_stem, analyze_run, refuse_replacing_files_not_an_analysis
    from mgrec.run import RunDir

    run = RunDir(_checked_run_dir(args.run_dir))
    run.check_outputs(files=run.analysis_files(args.split), folders=[run.analysis_dir])
    if run.analysis_dir.is_dir():
        refuse_replacing_files_not_an_analysis(run.analysis_dir, analysis_stem(args.split, args.checkpoint),
                                               remedy="move them out of it (mgrec analyze writes the run's analysis "
                                               "there)")
    for path in analyze_run(run.path, split=args.split, annotations=args.annotations, checkpoint=args.checkpoint):
        print(path)


def cmd_report(args) -> None:
    from mgrec.files import check_output, check_writable
    from mgrec.report.html import refuse_replacing_a_file_not_a_page, write_report
    from mgrec.run import RunDir

    run_dir = _checked_run_dir(args.run_dir)
    if args.detections is not None:
        return _report_detections(args, run_dir)
    if args.fps is not None:
        raise InputError("--fps: the frame rate of --detections' SMG label files; a run's report reads its own scores")
    args.split, args.checkpoint = args.split or "test", args.checkpoint or "best"
    out = None if args.out is None else Path(args.out)
    if out is None:
        RunDir(run_dir).check_outputs(files=[RunDir(run_dir).report_path(args.split, args.checkpoint)],
                                      advice="give --out FILE to write the report elsewhere")
    if out is not None:
        if args.out.endswith(("/", os.sep)) or out.is_dir():  # a folder: the report goes into it
            out = out / RunDir(run_dir).report_path(args.split, args.checkpoint).name
        config = RunDir(run_dir).read_config()
        reads = [RunDir(run_dir).config_path, args.annotations or config.data.annotations]
        # the report may replace a report, nothing else of the run (scores, detections: it reads them)
        owned = RunDir(run_dir).owned_files()
        own_reports = [f for f in (*owned, RunDir(run_dir).path / out.name) if f.name.startswith("report_")]
        check_output(out, reads=reads, protected=owned, replaces=own_reports)
        check_writable(out)
        _refuse_an_out_not_html(out, args.out)
        refuse_replacing_a_file_not_a_page(out, f"--out {args.out}")
    written = write_report(run_dir, split=args.split, out=out, annotations=args.annotations, checkpoint=args.checkpoint)
    print(f"report: {written}", file=closing_line_stream(out))


def _refuse_an_out_not_html(out: Path, given: str) -> None:
    """A report's --out (`given`, resolved to `out`) that names no HTML file: "--out reports" (meant: a folder) made a
    file named "reports"; "--out notes.txt" replaced the notes. A link to an .html file, a pipe and /dev/stdout (even
    when redirected to a file) stay allowed."""
    from mgrec.files import is_stream, output_target

    suffixes = {out.suffix.lower(), output_target(out).suffix.lower()}
    if not suffixes & {".html", ".htm"} and not is_stream(out) and out.parent != Path("/dev"):
        raise InputError(f"--out {given}: a report is an HTML file; give a name ending in .html, "
                         "or a folder (an existing one, or a name ending in '/')")


def _report_detections(args, run_dir: Path) -> None:
    """`mgrec report RUN --detections FILE`: the page of FILE's detections (`mgrec.report.detections`)."""
    from mgrec.files import check_output, check_writable, missing_file_problem, resolve_path
    from mgrec.report.detections import write_detections_report
    from mgrec.report.html import refuse_replacing_a_file_not_a_page
    from mgrec.run import RunDir
    from mgrec.smg_csv import checked_fps

    given = [option for option, value in (("--split", args.split), ("--checkpoint", args.checkpoint),
                                          ("--annotations", args.annotations)) if value is not None]
    if given:
        raise InputError(f"{', '.join(given)}: a page of --detections has no split, checkpoint or annotations (it "
                         "draws the file's detections, without ground truth); leave them out, or report the run's "
                         "split without --detections")
    source = Path(args.detections)
    if not (source.is_file() or source.is_dir()):  # a link to a file gone, a pipe (/dev/stdin): said so, not "no such
        raise InputError(  # file", nor a page named after the pipe (/proc/PID/fd/pipe:[N].html)
            f"--detections {args.detections}: {missing_file_problem(source, 'predictions file or folder')}")
    named = resolve_path(source)  # the page is named after it: detections.json -> detections.html, submission/ ->
    if not named.name:  # submission.html
        raise InputError(f"--detections {args.detections}: the root folder gives no name to the page; give --out "
                         "PAGE.html")
    if args.out is None:  # beside the detections
        out = named.with_suffix(".html") if source.is_file() else named.with_name(named.name + ".html")
    else:
        out = Path(args.out)
        if args.out.endswith(("/", os.sep)) or out.is_dir():
            out = out / ((named.stem if source.is_file() else named.name) + ".html")
    # the page never replaces what it reads, nor a file of a run; a page of its own may be written again
    check_output(out, reads=[source, RunDir(run_dir).config_path, RunDir(run_dir).classes_path],
                 protected=RunDir(run_dir).owned_files())
    check_writable(out)
    _refuse_an_out_not_html(out, args.out)
    refuse_replacing_a_file_not_a_page(out, f"--out {args.out}" if args.out is not None else "the page")
    written = write_detections_report(run_dir, source, out, checked_fps(args.fps, "--fps"))
    print(f"report: {written}", file=closing_line_stream(out))


def cmd_demo(args) -> None:
    """The main job on a fresh machine: real-motion demo data -> check -> train -> test scores -> report."""
    from mgrec.config import load_config
    from mgrec.data.annotations import load_annotations
    from mgrec.data.check import check_dataset
    from mgrec.data.demo import build_demo, default_cache_dir, demo_statistics, format_statistics
    from mgrec.evaluate.scoring import format_score_table
    from mgrec.files import resolve_path
    from mgrec.infer.evaluate_run import evaluate_online, evaluate_run
    from mgrec.report.html import write_report
    from mgrec.run import RunDir, check_removable, refuse_a_folder_of_runs, remove_run_dir
    from mgrec.train.loop import check_same_config, check_same_videos, refuse_before_training, train

    cache = Path(args.cache).expanduser() if args.cache else default_cache_dir()  # '~/x' as build_demo takes it
    # A rebuild of the demo data deletes its folders: a run inside them would go with them.
    if resolve_path(cache) in (resolve_path(args.out), *resolve_path(args.out).parents):
        raise InputError(f"--out {args.out} lies in the demo data folder {cache} (--cache), whose folders a rebuild "
                         "deletes; choose an --out outside it")
    keep = [("the demo data (--cache)", cache)]
    refuse_a_folder_of_runs(args.out)  # said before the data is built, not by the training after it
    if args.fresh:  # refused now, not after the data is built and checked
        check_removable(args.out, keep)
    # the config and --set items are checked before the data is built; data.streams reads the sensor streams
    plain = load_config(args.config, args.overrides)
    paths = build_demo(cache, log=log_line)
    print(f"demo data: {paths.root}")
    print(format_statistics(demo_statistics(paths.root)))
    data = paths.stream_overrides([s.name for s in plain.data.streams]) if plain.data.streams else paths.overrides()
    config = load_config(args.config, [*data, *args.overrides])
    if not args.fresh and RunDir(args.out).can_resume():  # said before the data check and its long report
        advice = ("it holds an earlier mgrec demo's run, which this one would resume: pass --fresh to replace it, or "
                  "choose another --out")
        check_same_config(RunDir(args.out), config, asked=f"--out {args.out}", advice=advice)
        annotations = load_annotations(config.data.annotations, default_fps=config.data.fps)
        check_same_videos(RunDir(args.out), config, annotations.video_ids(config.data.train_split),
                          annotations.video_ids(config.data.val_split), asked=f"--out {args.out}", advice=advice)
    report = check_dataset(config, balance=config.balance.method != "none")
    print(report.format())
    if args.fresh:  # only a run directory or an empty folder (`mgrec.run.check_removable`), and not for a
        refuse_before_training(config, Path(args.out))  # training that would be refused anyway
        remove_run_dir(args.out, keep)
    resume = RunDir(args.out).can_resume()
    said = {f"warning: {problem.where}: {problem.message}" for problem in report.warnings}

    def log_once(line: str) -> None:  # training checks the data again: its warnings were just printed above
        if line not in said:
            log_line(line)

    result = train(config, args.out, resume=resume, log=log_once, progress=show_progress(args))
    print(result.summary(next_steps=False))  # the demo goes on to evaluate and report
    scores = evaluate_run(args.out, split=config.data.test_split, progress=show_progress(args))
    print(format_score_table(scores))
    # the online track: the same videos streamed (the report shows both)
    online = evaluate_online(args.out, split=config.data.test_split, progress=show_progress(args),
                             threads=streaming_threads(args))
    latency = online["online"]["latency_seconds"]["mean"]
    print(f"streamed, as `mgrec stream` does (lookahead {online['online']['lookahead']:g} s): F1 "
          f"{100 * online['f1']:.2f} (offline {100 * scores['f1']:.2f}), reported "
          + ("-" if latency is None else f"{latency:.2f}") + " s after each gesture's end on average, "
          f"{online['online']['compute_ms_per_update']['mean']:.1f} ms of compute per update "
          f"({counted(online['online']['threads'], 'thread')})")
    print(f"report: {write_report(args.out, split=config.data.test_split)}")


if __name__ == "__main__":
    sys.exit(main())
