"""docs/: what they state about files and tests stays true of the code (they went stale by hand before)."""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import textwrap
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from tests.helpers import one_torch_thread  # noqa: F401 (autouse)

from mgrec.config import load_config
from mgrec.data.features import _SIDECAR_CHECKS
from mgrec.run import CONFIG_KEYS_ADDED, RUN_FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_contracts_state_the_run_format_and_every_sidecar_key():
    contracts = (DOCS / "contracts.md").read_text(encoding="utf-8")
    assert f'`run.json` `{{"format": {RUN_FORMAT_VERSION}}}`' in contracts
    for version, keys in CONFIG_KEYS_ADDED.items():
        assert f"{version} `{keys[0]}`" in contracts, f"contracts.md: format {version}'s first key {keys[0]}"
    sidecar = re.search(r"`<video_id>\.json` \{([^}]*)\}", contracts)
    assert sidecar is not None
    assert [key.strip() for key in sidecar.group(1).split(",")] == list(_SIDECAR_CHECKS)


def test_every_test_linked_from_the_docs_exists():
    linked = {}
    for doc in DOCS.glob("*.md"):
        for path, name in re.findall(r"\[`([\w/]+\.py)::(\w+)`\]", doc.read_text(encoding="utf-8")):
            linked.setdefault((path, name), doc.name)
    assert len(linked) > 100  # the robustness table links hundreds: the pattern still finds them
    missing = []
    functions: dict[str, set[str]] = {}  # each test file parsed once: parsing it per link took a minute for 700 rows
    for (path, name), doc in sorted(linked.items()):
        source = ROOT / "tests" / path
        if path not in functions:
            functions[path] = {node.name for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
                               if isinstance(node, ast.FunctionDef)} if source.is_file() else set()
        if name not in functions[path]:
            missing.append(f"{doc}: tests/{path}::{name}")
    assert not missing, "\n".join(missing)


def test_the_readme_s_own_feature_configs_load_as_they_say(tmp_path):
    """The two configs of "Your own features": the minimal one, and the one with the default recipe, which keeps
    the demo's recipe and replaces what belongs to the demo's data (fps, channels, classes, levels)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Your own features"):readme.index("### Several input streams")]
    blocks = [textwrap.dedent(b) for b in re.findall(r"\n\n((?:    [^\n]*\n)+)", section) if "name: my-gestures" in b]
    assert len(blocks) == 2
    loaded = []
    for index, block in enumerate(blocks):
        (tmp_path / f"my{index}.yaml").write_text(block, encoding="utf-8")
        loaded.append(load_config(tmp_path / f"my{index}.yaml"))
    minimal, recipe = loaded
    assert (minimal.model.variant, minimal.balance.method) == ("mgrec", "none")
    assert (recipe.model.variant, recipe.balance.method, recipe.data.normalize, recipe.train.batch_size,
            recipe.postprocess.shifted_passes) == ("actionformer", "repeat_factor", "video", 1, 4)
    assert (recipe.data.fps, recipe.data.feature_dim, recipe.model.num_classes, recipe.model.num_levels) == (
        None, 2048, 5, 6)


def test_the_robustness_rows_are_numbered_once_each_and_the_readme_counts_them():
    """A row pasted twice (368, once with a stale function name) made the table hold one row more than its last
    number, which the README quotes as the count."""
    table = (DOCS / "robustness.md").read_text(encoding="utf-8")
    numbers = [int(n) for n in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| bad or hostile inputs | {len(numbers)}," in readme
    assert f"(`docs/robustness.md`): {len(numbers)} bad" in readme


# ---------------------------------------------------------------------------------------------
# The README's Python blocks, run as a reader copies them: on a tiny stand-in for the demo's data (its config's
# 50 fps, 128 channels and 7 classes), laid out under the paths the blocks name, in a folder of their own.


def readme_python_block(heading: str) -> str:
    """The first ```python block after `heading` in README.md, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", readme[readme.index(f"\n{heading}\n"):], flags=re.S)
    assert found is not None, f"README.md: no python block after {heading!r}"
    return found.group(1)


def run_readme_block(heading: str, namespace: dict) -> dict:
    exec(compile(readme_python_block(heading), f"README.md ({heading})", "exec"), namespace)
    return namespace


def write_tiny_demo_data(root: Path, steps: int = 96) -> list[str]:
    """data/annotations.json and data/features/<id>.npy shaped as the demo's (50 fps, stride 4, 128 channels, 7
    classes), one video each of train, val and test, every class in each, each gesture a bump in channels of its own."""
    rng = np.random.default_rng(0)
    classes = [f"g{k}" for k in range(7)]
    (root / "data" / "features").mkdir(parents=True)
    database = {}
    for video, subset in (("clip_train", "train"), ("clip_val", "val"), ("clip_test", "test")):
        rows = rng.normal(size=(steps, 128)).astype(np.float32)
        gestures = []
        for label, start in enumerate(range(4, steps - 8, (steps - 8) // 7)):
            label %= 7
            rows[start:start + 6, label * 16:(label + 1) * 16] += 4.0
            gestures.append({"label": classes[label], "label_id": label,
                             "segment": [(start * 4 + 8) / 50, ((start + 6) * 4 + 8) / 50]})
        np.save(root / "data" / "features" / f"{video}.npy", rows)
        database[video] = {"subset": subset, "fps": 50.0, "duration": steps * 4 / 50, "annotations": gestures}
    (root / "data" / "annotations.json").write_text(json.dumps({"classes": classes, "database": database}))
    return classes


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A reader's folder after "In Python" ran in it: the tiny data, `runs/mine` trained by the block, and the
    block's namespace and printed lines."""
    folder = tmp_path_factory.mktemp("readme")
    classes = write_tiny_demo_data(folder)
    printed: list[str] = []
    here = Path.cwd()
    os.chdir(folder)
    try:
        namespace = run_readme_block("### In Python", {"print": lambda *a, **k: printed.append(" ".join(map(str, a)))})
    finally:
        os.chdir(here)
    return folder, classes, namespace, printed


def test_the_readme_s_in_python_block_trains_scores_and_saves_as_it_says(readme_folder):
    import mgrec

    folder, classes, namespace, printed = readme_folder
    curve, scores, detector = namespace["curve"], namespace["scores"], namespace["detector"]
    assert (folder / "runs" / "mine" / "checkpoints" / "best.safetensors").is_file()
    validated = [(r["epoch"], r["f1"]) for r in curve if r["kind"] == "val"]
    assert validated and str(validated) in printed  # "val F1 (a fraction) per validated epoch"
    assert all(0 <= f1 <= 1 for _, f1 in validated)
    assert f"{scores['f1']} {scores['average_mAP']}" in printed and 0 <= scores["f1"] <= 1  # fractions
    saved = mgrec.load_predictions(folder / "ranked.json", classes)
    assert saved.keys() == namespace["ranked"].keys() == {"clip_test"}
    info = json.loads((folder / "ranked.json").read_text())["mgrec"]  # the run's threshold kept with the list
    assert (info["set"], info["score_threshold"]) == ("ranked", detector.postprocess.score_threshold)
    # the comment's error, as the line would raise it
    line = next(line for line in readme_python_block("### In Python").splitlines() if "# -> " in line)
    code, expected = line.removeprefix("# ").split("# -> ")
    config = mgrec.load_config("demo/default.yaml")
    with pytest.raises(mgrec.InputError) as raised:
        exec(code, {"config": config})
    assert f"{type(raised.value).__name__}: {raised.value}" == expected.strip()
    # every entry point the section names is importable from mgrec itself
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = readme[readme.index("\n### In Python\n"):readme.index("```python", readme.index("\n### In Python\n"))]
    named = set(re.findall(r"`([A-Z]\w+|[a-z_]+)`", prose.split("(`help(mgrec)`")[1].split("Nothing exits")[0]))
    assert {"OfflineDetector", "score_file", "InputError"} <= named and named <= set(mgrec.__all__), named


def test_the_readme_s_online_block_streams_the_run_it_names(readme_folder, tmp_path, monkeypatch):
    folder, classes, _, _ = readme_folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo-mgrec").symlink_to(folder / "runs" / "mine")  # the demo's run, as `make demo` puts it
    (tmp_path / "features").mkdir()
    shutil.copy(folder / "data" / "features" / "clip_test.npy", tmp_path / "features" / "video.npy")
    rows = np.load(tmp_path / "features" / "video.npy")
    printed: list[str] = []
    namespace = run_readme_block("### Online", {
        "live_feature_chunks": np.array_split(rows, 9),  # the reader's own: (T_chunk, C) arrays as they arrive
        "print": lambda *a, **k: printed.append(" ".join(map(str, a)))})
    assert all(d.score >= namespace["detector"].postprocess.score_threshold for d in namespace["final"])
    assert printed, "the trained tiny run emits its test video's gestures"
    for line in printed:  # label, latency
        label, latency = line.split()
        assert label in classes and float(latency) >= 0


@pytest.mark.slow
def test_the_readme_s_onnx_block_detects_what_the_run_detects(readme_folder, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from mgrec.infer.export import export_onnx
    from mgrec.infer.offline import OfflineDetector

    folder, _, _, _ = readme_folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo-mgrec").symlink_to(folder / "runs" / "mine")
    (tmp_path / "features").mkdir()
    shutil.copy(folder / "data" / "features" / "clip_test.npy", tmp_path / "features" / "test_subject02_0.npy")
    export_onnx("runs/demo-mgrec", "net.onnx")  # `mgrec export runs/demo-mgrec --out net.onnx`
    detections = run_readme_block("### Exporting the network (ONNX)", {})["detections"]
    own = OfflineDetector.from_run("runs/demo-mgrec").detect("features/test_subject02_0.npy")
    assert [(d.label, d.start_frame, d.end_frame) for d in detections] == [
        (d.label, d.start_frame, d.end_frame) for d in own]
    assert np.allclose([d.score for d in detections], [d.score for d in own], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Relative links between the docs: the README's measurements moved to docs/quality.md and docs/speed.md, and a link
# such as `docs/speed.md#bf16-on-cpu` breaks silently when a file or a heading is renamed.

LINKING_DOCS = sorted(["README.md", "benchmarks/README.md", "benchmarks/results/README.md",
                       *(f"docs/{doc.name}" for doc in DOCS.glob("*.md"))])
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target "title"), ![alt](image)


def markdown_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks: a `#` or `](` there is code, not markdown."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file. No library of the project's dependencies computes
    them (markdown-it-py's anchors plugin would be a test dependency for these few lines), so the rule is written
    here, as GitHub applies it to the heading's rendered text: lower-case; every character that is not a letter,
    digit, space, `-` or `_` removed; each space a `-`; a repeated anchor gets `-1`, `-2`, ... in order."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in markdown_lines(text):
        heading = HEADING.match(line)
        if heading is None:
            continue
        rendered = CODE_SPAN.sub(r"\2", heading.group(1))  # `code` shows its text
        rendered = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", rendered)  # a link or image shows its text
        rendered = re.sub(r"<[^>]+>", "", rendered)  # inline HTML shows nothing of its tags
        slug = re.sub(r"[^\w\- ]", "", rendered.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(doc: Path) -> tuple[int, list[str]]:
    """How many relative links `doc` has, and `doc:line: target: why` for each one that leads nowhere."""
    checked, broken = 0, []
    for number, line in markdown_lines(doc.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub(lambda span: "`" + "x" * len(span.group(2)) + "`", line)  # `[a](b)` in code is no link
        for target in LINK_TARGET.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http(s), mailto: not checked here
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            linked = (doc.parent / unquote(path)).resolve() if path else doc
            where = f"{doc.relative_to(ROOT)}:{number}: {target}"
            if not linked.exists():
                broken.append(f"{where}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
            elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked.read_text(encoding="utf-8")):
                broken.append(f"{where}: no heading of {linked.name} has the anchor #{anchor}")
    return checked, broken


def test_github_anchors_follow_github_s_rule():
    text = "# Speed and memory, measured\n## bf16 on CPU\n```\n# not a heading\n```\n## Not done / known limits\n" \
           "## The paper's Table 2 (on the demo)\n## `mgrec run` [here](x.md)\n## Again\n## Again\n## snake_case ##\n"
    assert github_anchors(text) == {"speed-and-memory-measured", "bf16-on-cpu", "not-done--known-limits",
                                    "the-papers-table-2-on-the-demo", "mgrec-run-here", "again", "again-1",
                                    "snake_case"}


@pytest.mark.parametrize("name", LINKING_DOCS)
def test_every_relative_link_of_the_docs_leads_to_a_file_and_heading(name):
    checked, broken = broken_links(ROOT / name)
    assert not broken, "\n".join(broken)
    if name in ("README.md", "docs/robustness.md"):
        assert checked > 30, checked  # they link dozens: the pattern still finds them


# ---------------------------------------------------------------------------------------------
# The commands the docs quote (`mgrec detect RUN ... --format smg`, `python benchmarks/speed.py --device cpu`), checked
# against the parsers that would read them, without running them: a renamed or removed option left a quoted command
# that no longer runs, and nothing said so. The examples of `mgrec COMMAND --help` are checked too. Not read:
# docs/robustness.md, whose rows quote the refused command lines themselves (misspelt options, file names beginning
# with '-'), and benchmarks/results/README.md, whose rows record each campaign's command as it ran, at its commit.
COMMAND_DOCS = ["README.md", "benchmarks/README.md",
                *(f"docs/{doc.name}" for doc in sorted(DOCS.glob("*.md")) if doc.name != "robustness.md")]
SHELL_FENCE = re.compile(r"^ {0,3}(?:```|~~~)\s*(?:sh|bash|shell|console)?\s*$")
# A command begins a code span or fenced line, or follows a pipe, `&&`, `;` or a `$ ` prompt; environment settings
# (`OMP_NUM_THREADS=1`) and a folder (`.venv/bin/mgrec`) may come before it.
COMMAND = re.compile(r"(?:^|[|;&]\s*|\$\s+)(?:[A-Z_]+=\S*\s+)*(?:[\w./-]*/)?"
                     r"((?:python3? -m )?mgrec(?:\.cli)?|python3? (?:\S*/)?benchmarks/\w+\.py)(?=\s|$)")
END_OF_COMMAND = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&"}


def quoted_commands(markdown: str):
    """(line number, program, words) of each command quoted in `markdown`: in code spans, and on the lines of fenced
    shell blocks, where a line ending in `\\` or followed by an indented one that begins with `[` or `-` (the README's
    usage) goes on; comments dropped, `[...]` of optional parts and `...` removed."""
    pieces: list[tuple[int, str]] = []  # (line number, text that may hold commands)
    paragraph: list[tuple[int, str]] = []  # lines of prose, whose code spans may go on over a line's end
    fence = None
    for number, line in enumerate([*markdown.splitlines(), ""], 1):
        if fence is None and line.strip() and not FENCE.match(line):
            paragraph.append((number, line))
            continue
        if paragraph:
            text = "\n".join(text for _, text in paragraph)
            pieces += [(paragraph[0][0] + text[:span.start()].count("\n"), span.group(2).replace("\n", " "))
                       for span in re.finditer(r"(`+)(.+?)\1", text, flags=re.S)]
            paragraph = []
        if FENCE.match(line):
            fence = None if fence is not None else bool(SHELL_FENCE.match(line))
        elif fence:
            line = re.sub(r"(^|\s)#.*", "", line).rstrip()  # a comment
            if pieces and pieces[-1][1].endswith("\\"):
                pieces[-1] = (pieces[-1][0], pieces[-1][1][:-1] + " " + line)
            elif pieces and re.match(r"\s+[\[-]", line) and COMMAND.search(pieces[-1][1]):
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + " " + line)
            else:
                pieces.append((number, line))
    for number, text in pieces:
        for found in COMMAND.finditer(text):
            rest = text[found.end():].replace("[", " ").replace("]", " ")
            try:
                words = shlex.split(rest)
            except ValueError:  # an apostrophe of prose
                words = rest.split()
            for end, word in enumerate(words):
                if word in END_OF_COMMAND and not (word == "|" and words[end + 1:end + 2] and
                                                   words[end + 1].startswith("-")):  # `--compile | --onnx FILE`
                    words = words[:end]
                    break
            yield number, found.group(1), [w for w in words if w not in ("|", "...")]


def is_placeholder(word: str) -> bool:
    """RUN_DIR, N, ROWS, <name>, PATH...: a value the reader gives, not one to check."""
    return word.isupper() or "<" in word or "..." in word


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands (`mgrec detect`) or actions (`mgrec data check`) of `parser` by name; none for a command's own."""
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def refusals(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What of `words` `parser` would refuse: an option it does not have, a value outside an option's choices, a
    command (sub-parser) it does not have. Positional values are the reader's, not checked."""
    problems = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            break
        if word.startswith("-") and word != "-" and not re.fullmatch(r"-[\d.]+", word):
            name, equals, value = word.partition("=")
            action = parser._option_string_actions.get(name)
            if action is None:
                problems.append(f"{name} is not an option of {parser.prog}")
                continue
            values = [value] if equals else []
            wanted = 0 if action.nargs == 0 else action.nargs if isinstance(action.nargs, int) else \
                1 if action.nargs in (None, "?") else len(words)
            while not equals and len(values) < wanted and index < len(words) and not words[index].startswith("-"):
                values.append(words[index])
                index += 1
            for value in values:
                for choice in value.split("|"):  # `--format json|csv|smg`: each one
                    if action.choices is not None and not is_placeholder(choice) and choice not in action.choices:
                        problems.append(f"{name} {choice}: {parser.prog} accepts {name} {'|'.join(action.choices)}")
            continue
        commands = subcommands(parser)
        if commands:
            if is_placeholder(word):  # `mgrec COMMAND --help`
                return problems
            if word not in commands:
                return [*problems, f"{parser.prog} has no command {word}"]
            return problems + refusals(commands[word], words[index:])
    return problems


class _Parsed(Exception):
    """Raised in place of parsing by a benchmark's parser: it carries the parser, and the benchmark runs nothing."""


def benchmark_parser(script: str, words: list[str]) -> argparse.ArgumentParser:
    """The parser `python benchmarks/<script> WORDS` reads its words with (speed.py's `table` has one of its own): the
    script's main is called with parsing replaced by raising the parser, so nothing runs and the parser is the real
    one, choices included."""
    from tests.benchmarks.test_scripts import load_script

    def parse(self, *args, **kwargs):
        raise _Parsed(self)

    module = sys.modules.get(f"benchmark_{Path(script).stem}") or load_script(Path(script).stem)
    original = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = parse
    try:
        module.main(words)
    except _Parsed as parsed:
        parser = parsed.args[0]
        parser.prog = parser.prog if parser.prog.startswith(script) else f"benchmarks/{script}"  # not pytest's name
        return parser
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = original
    raise AssertionError(f"benchmarks/{script}: main() returned without parsing its arguments")


def test_quoted_commands_are_found_joined_and_checked_as_a_reader_would_type_them():
    markdown = ("Run `mgrec detect RUN a.npy\n--format srt --out x` (or `mgrec.errors`), then:\n\n```\n"
                "$ OMP_NUM_THREADS=1 .venv/bin/mgrec --threads 1 data check CONFIG [--balance]   # a comment\n"
                "mgrec score --gt A --pred P [--tune-on val\n           [--thresholds per_class]] | head\n"
                "python benchmarks/speed.py table a.json \\\n  --out t.md\n```\n```python\nmgrec = 1\n```\n")
    assert list(quoted_commands(markdown)) == [
        (1, "mgrec", ["detect", "RUN", "a.npy", "--format", "srt", "--out", "x"]),
        (5, "mgrec", ["--threads", "1", "data", "check", "CONFIG", "--balance"]),
        (6, "mgrec", ["score", "--gt", "A", "--pred", "P", "--tune-on", "val", "--thresholds", "per_class"]),
        (8, "python benchmarks/speed.py", ["table", "a.json", "--out", "t.md"])]
    from mgrec.cli import build_parser

    mgrec = build_parser()
    assert refusals(mgrec, "--threads 1 data check CONFIG --balance".split()) == []
    assert refusals(mgrec, "COMMAND --help".split()) == []  # a placeholder for the command: nothing to check
    assert refusals(mgrec, "detect RUN --spilt test --format json|vtx|FORMAT --precision=bf17".split()) == [
        "--spilt is not an option of mgrec detect", "--format vtx: mgrec detect accepts --format json|csv|smg|srt|vtt",
        "--precision bf17: mgrec detect accepts --precision auto|fp32|bf16"]
    assert refusals(mgrec, "data convrt X".split()) == ["mgrec data has no command convrt"]
    speed = benchmark_parser("speed.py", ["--device", "cpu"])
    assert refusals(speed, "--device gpu --skip-bs9".split()) == [
        "--device gpu: benchmarks/speed.py accepts --device cpu|cuda",
        "--skip-bs9 is not an option of benchmarks/speed.py"]
    assert refusals(benchmark_parser("speed.py", ["table"]), "table a.json --json b".split()) == [
        "--json is not an option of speed.py table"]


def test_every_command_the_docs_quote_uses_options_and_choices_its_parser_has():
    from mgrec.cli import build_parser

    mgrec = build_parser()
    # the examples that end each command's --help, as a fenced block of a doc of their own
    commands, examples = [mgrec], []
    for command in commands:
        examples += [line.strip() for line in (command.epilog or "").splitlines()[1:]]
        commands += subcommands(command).values()
    sources = {name: (ROOT / name).read_text(encoding="utf-8") for name in COMMAND_DOCS}
    sources["mgrec COMMAND --help"] = "\n".join(["```", *examples, "```"])
    checked, problems = Counter(), []
    for name, markdown in sources.items():
        for number, program, words in quoted_commands(markdown):
            script = program.split("benchmarks/")[-1]
            parser = benchmark_parser(script, words) if "benchmarks/" in program else mgrec
            checked[script if "benchmarks/" in program else "help" if name == "mgrec COMMAND --help" else "docs"] += 1
            problems += [f"{name}:{number}: {program} {' '.join(words)}: {why}" for why in refusals(parser, words)]
    assert not problems, "\n".join(problems)
    assert checked["docs"] > 100 and checked["help"] > 30 and len(checked) > 12, checked  # the patterns find them


# The README's and docs/speed.md's "mean ± std" figures come from committed campaigns: every "X.XX ± Y.YY" there must
# be the mean ± sample std (n-1), in percent, of val F1, test F1, MiGA F1, average mAP or the rarest third's F1 over
# one row of a committed results file (`ablation*.json`, `late_fusion.json`), recomputed from its runs, not read from
# the campaign's markdown: a figure typed by hand, or left behind when a campaign was rerun, fails with its line.
# (docs/quality.md also quotes pooled and after-training figures derived otherwise, so it is not held to this.)
RESULTS = ROOT / "benchmarks" / "results"
MEAN_STD_DOCS = ["README.md", "docs/speed.md"]
MEAN_STD = re.compile(r"(\d+\.\d\d) ± (\d+\.\d\d)")


def _pair(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def _groups(data: dict):
    """(rare classes, {row: runs}) of one results file, or None for a file of another kind."""
    if isinstance(data.get("runs"), list):
        groups: dict[str, list[dict]] = {}
        for run in data["runs"]:
            if "test" in run:
                groups.setdefault(run.get("row", run.get("config")), []).append(run)
        return data.get("rarest_third"), groups
    return None


def _measured_pairs() -> set[str]:
    pairs = set()
    for path in RESULTS.rglob("*.json"):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            continue
        if path.name == "late_fusion.json":
            for runs in data["rows"].values():
                for key in ("f1", "f1_miga", "average_mAP", "rarest_third_f1"):
                    if len(runs) > 1:
                        pairs.add(_pair([r[key] for r in runs]))
            continue
        found = _groups(data)
        if found is None:
            continue
        rare, groups = found
        for runs in groups.values():
            if len(runs) < 2:
                continue
            measures = [[r["test"][key] for r in runs] for key in ("f1", "f1_miga", "average_mAP")]
            if all(r.get("training", {}).get("val") for r in runs):
                measures.append([r["training"]["val"]["f1"] for r in runs])
            if rare and all("test_f1_per_class" in r for r in runs):
                measures.append([statistics.fmean(r["test_f1_per_class"][c] for c in rare) for r in runs])
            pairs.update(_pair(values) for values in measures)
    return pairs


def test_every_mean_and_std_quoted_comes_from_a_committed_campaign():
    measured = _measured_pairs()
    unknown = []
    for doc in MEAN_STD_DOCS:
        for number, line in enumerate((ROOT / doc).read_text().splitlines(), 1):
            for match in MEAN_STD.finditer(line):
                if f"{match.group(1)} ± {match.group(2)}" not in measured:
                    unknown.append(f"{doc}:{number}: {match.group(0)}")
    assert not unknown, "not the mean ± sample std of any committed campaign's row:\n" + "\n".join(unknown)
