"""docs/: what they state about files and tests stays true of the code (they went stale by hand before)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import textwrap
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
