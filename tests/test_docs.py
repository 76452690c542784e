"""docs/: what they state about files and tests stays true of the code (they went stale by hand before)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
