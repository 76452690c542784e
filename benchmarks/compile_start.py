"""How long a stream waits for its compiled network: cold (empty inductor cache) and warm starts.

    python benchmarks/compile_start.py --json benchmarks/results/<campaign>/compile_start.json [--warm 3]

`mgrec stream --compile` (`OnlineDetector(compile=True)`) compiles the network once, when the
detector is created. Each start here is a fresh process that builds the demo model (random
weights, `demo/mgrec.yaml`, what `speed.py` times), creates the online detector with the compiled
network, and then times updates with a full window, compiled and eager. All starts share one
inductor cache folder, empty at the first start (cold); the later ones (warm) find what the first
wrote, as a user's second `mgrec stream --compile` does. Reported per start: `setup_s` (creating
the detector: tracing, compiling or loading from the cache, and the warm-up pass), `process_s`
(from launch to the first update done, imports included), the median update times, and the
cache counters of torch's compiler (a warm start hits AOTAutograd's cache and inductor's FX graph cache).

Writes the JSON (with the provenance record) and prints a short table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgrec.provenance import PROVENANCE_KEY, provenance

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from pathlib import Path
launched = float(sys.argv[1])
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from mgrec.allocator import keep_freed_cpu_memory
from mgrec.config import load_config
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.model.detector import build_detector

keep_freed_cpu_memory()  # as the CLI does
config = load_config(sys.argv[3], json.loads(sys.argv[5]))
torch.manual_seed(config.seed)
model = build_detector(config.model).eval()
classes = [f"class{k}" for k in range(config.model.num_classes)]
loaded = OfflineDetector(model, config, classes, config.postprocess, run_dir=Path(sys.argv[3]).parent)
rng = np.random.default_rng(0)


def median_update_ms(online, updates):
    for _ in range(-(-online.history // online.hop) + 3):  # fill the window, then warm up
        online.push(rng.standard_normal((online.hop, config.data.feature_dim), dtype=np.float32))
    times = []
    for _ in range(updates):
        chunk = rng.standard_normal((online.hop, config.data.feature_dim), dtype=np.float32)
        started = time.perf_counter()
        online.push(chunk)
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


started = time.perf_counter()
compiled = OnlineDetector(loaded, fps=config.data.fps, compile=True)
setup_s = time.perf_counter() - started
compiled.push(rng.standard_normal((compiled.hop, config.data.feature_dim), dtype=np.float32))
process_s = time.time() - launched
updates = int(sys.argv[4])
print(json.dumps({
    "setup_s": setup_s,
    "process_s": process_s,
    "history": compiled.history,
    "hop": compiled.hop,
    "compiled_update_ms": median_update_ms(compiled, updates),
    "eager_update_ms": median_update_ms(OnlineDetector(loaded, fps=config.data.fps), updates),
    # what the caches gave: a warm start should hit both (the lowered graph and the compiled code)
    "aot_autograd": dict(torch._dynamo.utils.counters["aot_autograd"]),
    "inductor_fx_graph_cache": {key: value for key, value in torch._dynamo.utils.counters["inductor"].items()
                                if key.startswith("fxgraph_cache")},
}))
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--config", type=Path, default=REPO / "src/mgrec/configs/demo/mgrec.yaml",
                        help="model config (default: the demo's, as speed.py's online update)")
    parser.add_argument("--warm", type=int, default=3, help="warm starts after the cold one (default 3)")
    parser.add_argument("--updates", type=int, default=50, help="timed updates per start (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as a stream runs)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (repeatable; the tests use a tiny model)")
    args = parser.parse_args(argv)
    if args.warm < 1 or args.updates < 1 or args.threads < 1:
        parser.error("--warm, --updates and --threads must be 1 or more")
    return args


def one_start(cache: Path, config: Path, threads: int, updates: int, overrides: list[str]) -> dict:
    """One fresh process with the inductor cache in `cache`; its JSON line."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, repr(time.time()), str(threads), str(config), str(updates),
         json.dumps(overrides)],
        env=env, capture_output=True, text=True, check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"a start failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mgrec-inductor-") as cache:
        starts = [one_start(Path(cache), args.config, args.threads, args.updates, args.override)
                  for _ in range(1 + args.warm)]
    cold, warm = starts[0], starts[1:]
    result = {
        "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
        "overrides": args.override,
        "threads": args.threads,
        "cold": cold,
        "warm": warm,
        "warm_setup_s_median": statistics.median(s["setup_s"] for s in warm),
        "warm_process_s_median": statistics.median(s["process_s"] for s in warm),
        PROVENANCE_KEY: provenance(["python", "benchmarks/compile_start.py", *argv], threads=args.threads),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("| start | detector ready (s) | launch to first update (s) | compiled update (ms) | eager update (ms) |")
    print("|---|---|---|---|---|")
    for name, start in [("cold", cold)] + [(f"warm {k + 1}", s) for k, s in enumerate(warm)]:
        print(f"| {name} | {start['setup_s']:.1f} | {start['process_s']:.1f} | {start['compiled_update_ms']:.1f} | "
              f"{start['eager_update_ms']:.1f} |")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
