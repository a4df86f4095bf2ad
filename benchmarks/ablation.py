"""What each lever of configs/early_cpu.config buys, measured on the VALIDATION split only.

    python benchmarks/ablation.py [--data DIR] [--config FILE] [--epochs 5] [--only NAME ...]

Each variant changes one thing of the config, trains for the same short number of epochs on the
788 training images of the reference split, and is scored (mean per-image Dice at 224x224) on the
validation images the trainer holds out of them; the 197 test images are never looked at. Test-time
flips and the minimum speck area are scored on the full variant's model without retraining.
"""
import argparse
import json
import os
import time
from pathlib import Path

from common import DEFAULT_DATA, ROOT, read_summary, reference_split, run, write_config

from allseg.config import load_config  # noqa: E402
from allseg.pairing import split_pairs  # noqa: E402
from allseg.pairing import find_pairs  # noqa: E402

VARIANTS = {
    "full (configs/early_cpu.config)": {},
    "batch norm off": {"model.batch_norm": "False"},
    "no flips / 90-degree turns": {"train.augment_flips": "False"},
    "bce loss instead of bce+dice": {"train.loss": '"bce"'},
    "colour jitter 0.5 added": {"train.augment_color": "0.5"},
    "input resized to 128x128": {"model.image_width": "128", "model.image_height": "128"},
}
PREDICTION_VARIANTS = {
    "+ test-time flips": {"model.tta_flips": "True"},
    "+ min_area 3": {"model.min_area": "3"},
    "+ min_area 8": {"model.min_area": "8"},
    "+ test-time flips + min_area 3": {"model.tta_flips": "True", "model.min_area": "3"},
}


def validation_folder(all_dir, config, scratch):
    """Links to the validation pairs the trainer carves out, in the layout the evaluator reads."""
    cfg = load_config(config)
    pairs = find_pairs(all_dir / "train" / "original", all_dir / "train" / "segmented", "Early")
    _, val = split_pairs(pairs, cfg.train.validation_split, cfg.train.seed)
    folder = Path(scratch) / "val"
    for role, attr in (("original", "image"), ("segmented", "mask")):
        (folder / role / "Early").mkdir(parents=True, exist_ok=True)
        for pair in val:
            link = folder / role / "Early" / getattr(pair, attr).name
            if not link.exists():
                os.symlink(getattr(pair, attr).resolve(), link)
    return folder, len(val)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "early_cpu.config")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--model-run", type=Path,
                        help="score the prediction settings on this run's model (default: the "
                             "full variant's model trained here)")
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "ablation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    all_dir = reference_split(args.data, ROOT / "bench_runs" / "real_early")
    val_dir, n_val = validation_folder(all_dir, args.config, args.scratch)
    rows = []
    model_run = args.model_run
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        if args.only and name not in args.only:
            continue
        run_dir = args.scratch / f"{index}-{time.strftime('%Y%m%d-%H%M%S')}"
        config = write_config(args.config, run_dir / "config", run_dir, all_dir,
                              {**overrides, "train.epochs": str(args.epochs)}, eval_dir=val_dir)
        seconds = run("TensorflowUNetALLTrainer.py", config)
        run("TensorflowUNetALLEvaluator.py", config)
        s = read_summary(run_dir / "eval")
        rows.append({"variant": name, "val_mean_dice": s["mean_dice"], "val_p10_dice": s["p10_dice"],
                     "val_pooled_dice": s["pooled_dice"], "train_minutes": seconds / 60})
        print(rows[-1], flush=True)
        if index == 0 and not model_run:
            model_run = run_dir
    if model_run:
        # Scored on validation, into folders of their own: the run's test summary stays as it was.
        for index, (name, overrides) in enumerate({"as trained": {}, **PREDICTION_VARIANTS}.items()):
            eval_dir = model_run / f"eval-val-{index}"
            config = write_config(args.config, eval_dir / "config", model_run, all_dir,
                                  {**overrides, "train.eval_dir": f'"{eval_dir.as_posix()}"'},
                                  eval_dir=val_dir)
            run("TensorflowUNetALLEvaluator.py", config)
            s = read_summary(eval_dir)
            rows.append({"variant": f"{model_run.name} model, {name}", "val_mean_dice": s["mean_dice"],
                         "val_p10_dice": s["p10_dice"], "val_pooled_dice": s["pooled_dice"],
                         "train_minutes": None})
            print(rows[-1], flush=True)

    print(save(args.out, rows, args.epochs, n_val))


def save(out, new_rows, epochs, n_val):
    """Merges rows into out/ablation.json (a variant run again replaces its row), rewrites the
    Markdown table, and returns it: variants can be run in separate sittings."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ablation.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    names = {r["variant"] for r in new_rows}
    rows = [r for r in rows if r["variant"] not in names] + new_rows
    path.write_text(json.dumps({"epochs": epochs, "n_val": n_val, "rows": rows}, indent=2) + "\n")
    lines = [f"Validation split: {n_val} of the 788 training images. Trained variants: "
             f"{epochs} epochs each; prediction settings: on one model, no retraining.", "",
             "| variant | val mean Dice | val 10th pct | val pooled Dice | training |",
             "|---|---|---|---|---|"]
    for r in rows:
        minutes = "same model" if r["train_minutes"] is None else f"{r['train_minutes']:.1f} min"
        lines.append(f"| {r['variant']} | {r['val_mean_dice']:.4f} | {r['val_p10_dice']:.4f} | "
                     f"{r['val_pooled_dice']:.4f} | {minutes} |")
    table = "\n".join(lines)
    (out / "ablation.md").write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
