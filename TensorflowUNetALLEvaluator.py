"""Evaluate the best model on the [eval] pairs of a config; writes <eval_dir>/summary.json.

    python TensorflowUNetALLEvaluator.py [CONFIG] [--model pretrained|PATH]
"""
from pathlib import Path

import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import DEFAULT_CONFIG, add_model_argument, config_parser, run
from allseg.core.errors import UserError
from allseg.evaluate.evaluation import HISTOGRAMS, SUMMARY, WORST, evaluate
from allseg.model.shipped import load_for_model


def main(args):
    cfg = load_for_model(args.config, args.model)
    if getattr(cfg, "model_config_only", False):  # its [eval] folders are the training run's
        raise UserError(f"no config here ({DEFAULT_CONFIG} not found): give a config whose [eval] "
                        "names your test images and masks")
    s = evaluate(cfg)
    print(f"Test loss: {s['loss']:.4f}")
    print(f"Test binary accuracy: {s['binary_accuracy']:.4f}")
    print(f"Per-image Dice: mean {s['mean_dice']:.4f}, median {s['median_dice']:.4f}, "
          f"10th percentile {s['p10_dice']:.4f}; mean IoU {s['mean_iou']:.4f} "
          f"({s['num_images']} images, each at its own size)")
    print(f"Pooled Dice {s['pooled_dice']:.4f}, pooled IoU {s['pooled_iou']:.4f}, "
          f"precision {s['precision']:.4f}, recall {s['recall']:.4f}, "
          f"pixel accuracy {s['pixel_accuracy']:.4f}")
    cells = s["cells"]
    print(f"Cells (regions >= {cells['definition']['min_area_px']} px, matched one to one at "
          f"IoU >= 0.5): F1 {cells['f1']:.4f} (precision {cells['precision']:.4f}, recall "
          f"{cells['recall']:.4f}; {cells['tp']} found, {cells['fn']} missed, {cells['fp']} false "
          f"of {cells['n_true']} true), panoptic quality {cells['panoptic_quality']:.4f}")
    print(f"Cell count error {cells['count_mae']:.3f} per image (bias {cells['count_bias']:+.3f}; "
          f"{cells['split_true']} true cells split, {cells['merged_pred']} predicted cells merging "
          f"true ones); "
          f"on the cells only: Dice {cells['dice']:.4f}, NSD at 2 px {cells['nsd_2px']:.4f}, "
          f"HD95 {_px(cells['hd95'])}")
    if "nuclei" in s:
        n = s["nuclei"]
        nc = "none matched" if n["nc_error_mean"] is None else f"{n['nc_error_mean']:.4f}"
        print(f"Nuclei: mean Dice {n['mean_dice']:.4f}, pooled Dice {n['pooled_dice']:.4f}; N:C "
              f"error {nc} (mean over the {n['matched_cells']} matched cells)")
    if len(s["per_category"]) > 1:
        for name, c in s["per_category"].items():
            cc = cells["per_category"][name]
            print(f"  {name:10s} mean Dice {c['mean_dice']:.4f}, mean IoU {c['mean_iou']:.4f}, "
                  f"pooled Dice {c['pooled_dice']:.4f}, cell F1 {cc['f1']:.4f}, count error "
                  f"{cc['count_mae']:.3f} ({c['num_images']} images)")
    eval_dir = Path(cfg.train.eval_dir)
    print(f"Wrote {eval_dir / SUMMARY}, {eval_dir / HISTOGRAMS}, {eval_dir / WORST}")


def _px(value):
    return "undefined (no image with cells on both sides)" if value is None else f"{value:.2f} px"


if __name__ == "__main__":
    run(main, add_model_argument(config_parser(__doc__.splitlines()[0])).parse_args())
