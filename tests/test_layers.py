"""The import layers of docs/architecture.md, checked on the source (imports inside functions included).

    cli  ->  infer, train, extract, report  ->  data, model, postprocess, evaluate  ->  bottom modules
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mgrec"

BOTTOM = {"errors", "files", "timeline", "config", "config_reference", "configs", "records", "run", "devices",
          "allocator", "provenance", "terminal", "smg_csv"}
MIDDLE = {"data", "model", "postprocess", "evaluate"}
UPPER = {"infer", "train", "extract", "report"}

# What each part may import, beyond itself.
ALLOWED = {
    **{name: BOTTOM for name in BOTTOM},
    "data": BOTTOM,
    "model": BOTTOM,
    "postprocess": BOTTOM | {"model"},  # runs the network on a whole video (model.inputs)
    "evaluate": BOTTOM,
    "infer": BOTTOM | MIDDLE,
    "train": BOTTOM | MIDDLE,
    "extract": BOTTOM | {"data", "model"},  # an end-to-end run's adapters and memory plan (model.end_to_end, memory)
    "report": BOTTOM | {"data", "evaluate"},
    "cli": BOTTOM | MIDDLE | UPPER,
    "__main__": {"cli"},  # `python -m mgrec`: the command line, nothing else
}


def part_of(module: str) -> str:
    """`mgrec.infer.offline` -> "infer"; `mgrec.run` -> "run"."""
    return module.split(".")[1]


def imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mgrec."):
            names.add(part_of(node.module))
        elif isinstance(node, ast.Import):
            names.update(part_of(alias.name) for alias in node.names if alias.name.startswith("mgrec."))
    return names


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_imports_only_what_its_layer_allows(path):
    relative = path.relative_to(SRC)
    own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    assert own in ALLOWED, f"{relative}: not placed in a layer; add it to tests/test_layers.py and docs/architecture.md"
    forbidden = imported_parts(path) - ALLOWED[own] - {own}
    assert not forbidden, f"{relative} imports {sorted(forbidden)}, outside what {own!r} may import"


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mgrec.train.loop import train\n    import mgrec.extract.jobs\n")
    assert imported_parts(module) == {"train", "extract"}
