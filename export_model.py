"""Export a config's trained model as a SavedModel, TFLite (float32, float16) and OpenVINO IR.

    python export_model.py [CONFIG] [--inference-copy FILE.keras]

Writes <model_dir>/export/ and checks each export against the Keras model on the first few
[eval] images (Dice between their masks), printing the figures. With --inference-copy, writes
instead the model without its optimizer's state (a third of the size; it still reloads and
evaluates) and the config beside it, as the shipped model in pretrained/ is made.
"""
from pathlib import Path

import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.core.config import load_config
from allseg.infer.export import export_model, save_for_inference
from allseg.evaluate.export_check import compare_exports
from allseg.model.unet import load_trained_model


def main(args):
    cfg = load_config(args.config)
    model = load_trained_model(cfg)
    if args.inference_copy:
        sha256 = save_for_inference(model, cfg, args.inference_copy)
        size = args.inference_copy.stat().st_size
        print(f"Wrote {args.inference_copy} ({size / 2**20:.2f} MB, SHA-256 {sha256}) and "
              f"{args.inference_copy.with_suffix('.config')}")
        return
    paths = export_model(model, cfg.train.model_dir)
    for name, path in paths.items():
        print(f"  {name:15s} {path}")
    for name, dice in compare_exports(cfg, model, paths).items():
        print(f"  {name:15s} mask Dice against the Keras model: {dice:.4f}")


if __name__ == "__main__":
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--inference-copy", type=Path, metavar="FILE.keras",
                        help="write the model without its optimizer state, and its config beside it")
    run(main, parser.parse_args())
