"""docs/: what they state about files and tests stays true of the code (they went stale by hand before)."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

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
    for (path, name), doc in sorted(linked.items()):
        source = ROOT / "tests" / path
        defined = source.is_file() and name in {
            node.name for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef)}
        if not defined:
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
