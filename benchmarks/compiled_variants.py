"""What else was tried to make the compiled online network faster (issue #20's 4 ms goal), one variant per process.

    python benchmarks/compiled_variants.py RUN_DIR --json benchmarks/results/<campaign>/compiled_variants.json

The network of a trained run (its EMA weights, `OfflineDetector.from_run`) on one online window of
`--window` steps (default 128, the demo's default window), one thread: the median of `--repeats`
forward passes after 20 warm-up ones, and the largest difference of its class logits from the eager
fp32 network's. Each variant runs in a fresh process (compiling, or replacing a torch function for the
whole process, must not carry over to the next):

- `eager`: the network as it is, fp32;
- `compiled`: `torch.compile` as `mgrec stream --compile` compiles it (inductor with its C++ wrapper);
- `conv_1x1_as_mm`: the same, with inductor's option to lower 1x1 convolutions to matrix products;
- `freezing`: the same, with inductor's weight freezing (constants folded, weights prepacked);
- `mm_convs`: compiled, with every ungrouped 1-D convolution written as one matrix product over the
  stacked shifted inputs (im2col), so that inductor sees matmuls only;
- `mm_convs_bf16`: that, under bf16 autocast (the matrix products on the CPU's bf16 units);
- `compiled_bf16`: `compiled` under bf16 autocast (`mgrec stream --compile --precision bf16`);
- `dense_attention`: compiled, ActionFormer's local attention computed as one dense (T, T) attention
  with a band mask (`mgrec.model.reference.local_self_attention`) instead of in chunks;
- `threads2`: `compiled` on two threads;
- `max_autotune`: compiled with inductor's `max_autotune` and weight freezing, so that it may choose its own C++
  matrix-product templates for the CPU (tried against each other at compile time);
- `aoti`: the network exported (`torch.export`) and compiled ahead of time by AOTInductor into a package
  (`torch._inductor.aoti_compile_and_package`), then loaded and called as a plain C++ runner: no Dynamo guards
  and no Python wrapper around the compiled code, and a warm start that loads a file instead of compiling.

Writes the JSON (with the provenance record) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mgrec.provenance import PROVENANCE_KEY, provenance

VARIANTS = ("eager", "compiled", "conv_1x1_as_mm", "freezing", "mm_convs", "mm_convs_bf16", "compiled_bf16",
            "dense_attention", "threads2", "max_autotune", "aoti")


def conv1d_as_matmul(conv1d):
    """`torch.nn.functional.conv1d` for one sequence, as one matrix product over the stacked shifted inputs
    (grouped convolutions and batches of more than one go to `conv1d` itself)."""
    import torch
    import torch.nn.functional as F

    def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if groups != 1 or isinstance(padding, str) or x.shape[0] != 1:
            return conv1d(x, weight, bias, stride, padding, dilation, groups)
        stride, padding, dilation = (v[0] if isinstance(v, (tuple, list)) else v for v in (stride, padding, dilation))
        out_channels, in_channels, kernel = weight.shape
        if padding:
            x = F.pad(x, (padding, padding))
        length = (x.shape[-1] - dilation * (kernel - 1) - 1) // stride + 1
        # rows k * C_in + c: input channel c shifted by tap k
        columns = torch.cat([x[0, :, k * dilation: k * dilation + stride * (length - 1) + 1: stride]
                             for k in range(kernel)], dim=0)
        y = torch.mm(weight.permute(0, 2, 1).reshape(out_channels, kernel * in_channels), columns)[None]
        return y if bias is None else y + bias[:, None]

    return conv


def aoti_network(model, x, mask, package: Path):
    """The network compiled ahead of time by AOTInductor and loaded back: a callable of (x, mask) returning the
    class logits of each level (the package holds no Python dataclass)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, x, mask):
            return tuple(self.network(x, mask).cls_logits)

    with torch.no_grad():  # export traces outside inference mode; the package then runs inside it
        exported = torch.export.export(Logits(model).eval(), (x.clone(), mask.clone()))
    path = torch._inductor.aoti_compile_and_package(exported, package_path=str(package))
    runner = torch._inductor.aoti_load_package(path)
    return lambda x, mask: runner(x, mask)


def measure(run_dir: str, variant: str, window: int, repeats: int) -> dict:
    """One variant, in this process: {"variant", "median_ms", "max_logit_diff"}."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    from mgrec.infer.offline import OfflineDetector
    from mgrec.model import actionformer, reference
    from mgrec.model.inputs import pad_video

    torch.set_num_threads(2 if variant == "threads2" else 1)
    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    model = detector.model.eval()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((window, detector.config.data.feature_dim)).astype(np.float32)
    with torch.inference_mode():
        x, mask = pad_video(features, model.max_div_factor, window)
        reference_logits = model(x, mask).cls_logits
        if variant.startswith("mm_convs"):
            F.conv1d = conv1d_as_matmul(F.conv1d)
        if variant == "dense_attention":
            actionformer.LocalSelfAttention.forward = lambda self, h, m: reference.local_self_attention(self, h, m)
        options = {"cpp_wrapper": True, **({variant: True} if variant in ("conv_1x1_as_mm", "freezing") else {}),
                   **({"max_autotune": True, "freezing": True} if variant == "max_autotune" else {})}
        if variant == "aoti":
            import tempfile

            with torch.inference_mode(False):
                network = aoti_network(model, x, mask, Path(tempfile.mkdtemp()) / "network.pt2")
        else:
            network = model if variant == "eager" else torch.compile(model, dynamic=False, options=options)
        precision = (torch.autocast("cpu", dtype=torch.bfloat16) if variant.endswith("bf16")
                     else torch.autocast("cpu", enabled=False))
        with precision:
            logits = network(x, mask)
            logits = logits if variant == "aoti" else logits.cls_logits
            for _ in range(20):
                network(x, mask)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                network(x, mask)
                times.append(time.perf_counter() - started)
    difference = max((a.float() - b.float()).abs().max().item() for a, b in zip(reference_logits, logits))
    return {"variant": variant, "median_ms": 1000 * float(np.median(times)), "max_logit_diff": difference}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--window", type=int, default=128, help="feature steps of the online window (default 128)")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: measure this variant
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.run_dir, args.one, args.window, args.repeats)))
        return 0
    results = []
    for variant in args.variants:
        done = subprocess.run([sys.executable, __file__, args.run_dir, "--one", variant, "--window", str(args.window),
                               "--repeats", str(args.repeats)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"variant {variant} failed:\n{done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{variant:18s} {results[-1]['median_ms']:7.2f} ms   max |logit - eager fp32| "
              f"{results[-1]['max_logit_diff']:.1e}", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {PROVENANCE_KEY: provenance(["python", "benchmarks/compiled_variants.py", *argv], threads=1),
                    "window": args.window, "repeats": args.repeats, "results": results}
        args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
