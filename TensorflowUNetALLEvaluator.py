"""Evaluate the best model on the [eval] pairs of a config; writes <eval_dir>/summary.json.

    python TensorflowUNetALLEvaluator.py [CONFIG]
"""
from pathlib import Path

import allseg.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.cli import config_parser, run
from allseg.config import load_config
from allseg.evaluation import SUMMARY, evaluate


def main(config_path):
    cfg = load_config(config_path)
    s = evaluate(cfg)
    print(f"Test loss: {s['loss']:.4f}")
    print(f"Test binary accuracy: {s['binary_accuracy']:.4f}")
    print(f"Per-image Dice: mean {s['mean_dice']:.4f}, median {s['median_dice']:.4f}, "
          f"10th percentile {s['p10_dice']:.4f}; mean IoU {s['mean_iou']:.4f} "
          f"({s['num_images']} images, each at its own size)")
    print(f"Pooled Dice {s['pooled_dice']:.4f}, pooled IoU {s['pooled_iou']:.4f}, "
          f"precision {s['precision']:.4f}, recall {s['recall']:.4f}, "
          f"pixel accuracy {s['pixel_accuracy']:.4f}")
    if len(s["per_category"]) > 1:
        for name, c in s["per_category"].items():
            print(f"  {name:10s} mean Dice {c['mean_dice']:.4f}, mean IoU {c['mean_iou']:.4f}, "
                  f"pooled Dice {c['pooled_dice']:.4f} ({c['num_images']} images)")
    print(f"Wrote {Path(cfg.train.eval_dir) / SUMMARY}")


if __name__ == "__main__":
    run(main, config_parser(__doc__.splitlines()[0]).parse_args().config)
