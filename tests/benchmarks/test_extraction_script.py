"""benchmarks/extraction.py runs and writes what the README's extraction table is made from."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_extraction_benchmark_writes_its_rows(tmp_path, bikes):  # bikes: the cached real clip it loops
    out = tmp_path / "extraction.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "extraction.py"), "--quick", "--json", str(out),
                    "--threads", "1"], check=True, capture_output=True, cwd=REPO, timeout=300)
    result = json.loads(out.read_text())
    assert result["video"]["made_from"].startswith("bikes.mp4")
    rows = {row["recipe"]: row for row in result["rows"]}
    default, sampled = rows["efficientnet-lite0 224 every frame"], rows["efficientnet-lite0 224, 4 frames/window"]
    assert default["windows"] == sampled["windows"] == (3 * 30 - 16) // 4 + 1
    assert default["cosine_to_default"] == 1.0 and 0.5 < sampled["cosine_to_default"] < 1.0
    # the default's network in torch instead of onnxruntime: the same features up to float rounding
    assert rows["efficientnet-lite0 224 every frame, torch"]["cosine_to_default"] > 0.9999
    assert all(row["seconds"] > 0 and row["x_real_time"] > 0 for row in rows.values())
    assert "| efficientnet-lite0 224, 4 frames/window |" in out.with_suffix(".md").read_text()
    # made while decoded (the rows checked equal to the file's by the script): the first row long before the last
    [live] = result["live"]
    assert live["recipe"] == "efficientnet-lite0 224 every frame"
    assert 0 < live["first_row_s"] < live["all_rows_s"] and live["whole_extraction_s"] == default["seconds"]
    assert result["provenance"]["command"].startswith("python benchmarks/extraction.py")
