"""The training step alone at several batch sizes, with and without XLA: what larger steps and XLA
could buy a training run on this machine, before any input pipeline.

    python benchmarks/step_batch.py [--config configs/all_cpu.config] [--batch-sizes 4 8 16 32]

Builds the config's model and times train_on_batch on one fixed random batch (throughput.py's
step_worker), each setting in its own process, one after the other. Prints images/s and the ratio
to the config's own batch size without XLA, measured in the same run; writes
benchmarks/results/step_batch.json.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT


def measure(config, batch_size, approach):
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import json;"
            "import allseg.quiet_start; from allseg.config import load_config;"
            "from throughput import step_worker;"
            f"cfg = load_config({str(config)!r}); cfg.train.batch_size = {batch_size};"
            f"print(json.dumps(step_worker(cfg, {approach!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["images"] / r["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "all_cpu.config")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "step_batch.json")
    args = parser.parse_args()

    rows = []
    for batch_size in args.batch_sizes:
        for approach in ("plain", "xla"):
            rate = measure(args.config, batch_size, approach)
            rows.append({"batch_size": batch_size, "xla": approach == "xla", "images_per_s": rate})
            print(f"batch {batch_size:3d}  XLA {'on ' if approach == 'xla' else 'off'}  "
                  f"{rate:7.2f} images/s", flush=True)
    from allseg.config import load_config
    own = load_config(args.config).train.batch_size
    base = next((r["images_per_s"] for r in rows if r["batch_size"] == own and not r["xla"]), None)
    for r in rows:
        r["ratio_to_config"] = r["images_per_s"] / base if base else None
    print(f"ratios to batch {own} without XLA:",
          ", ".join(f"{r['batch_size']}{'+xla' if r['xla'] else ''} {r['ratio_to_config']:.2f}x"
                    for r in rows if base))
    args.out.write_text(json.dumps({"config": str(args.config), "rows": rows}, indent=2) + "\n")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
