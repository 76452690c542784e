"""benchmarks/cost_curves.py at tiny sizes: it measures every length in a fresh process and writes its files."""

import json

import pytest
from tests.benchmarks.test_scripts import assert_provenance, load_script


@pytest.mark.slow
def test_cost_curves_quick_writes_costs_table_and_plot(tmp_path):
    script = load_script("cost_curves")
    out = tmp_path / "campaign" / "cost_curves.json"
    argv = ["--json", str(out), "--quick", "--config", "demo/mgrec.yaml", "--dim", "16", "--threads", "1"]
    assert script.main(argv) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/cost_curves.py --json", threads=1)
    assert [c["steps"] for c in result["costs"]] == script.QUICK_LENGTHS
    for cost in result["costs"]:
        assert cost["seconds"] > 0 and cost["features_bytes"] == cost["steps"] * 16 * 4 and not cost["chunked"]
    assert out.with_suffix(".md").read_text().count("\n") == 2 + len(script.QUICK_LENGTHS)
    assert out.with_suffix(".png").stat().st_size > 1000
