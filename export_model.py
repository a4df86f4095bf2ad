"""Export a config's trained model as a SavedModel, TFLite (float32, float16) and OpenVINO IR.

    python export_model.py [CONFIG]

Writes <model_dir>/export/ and checks each export against the Keras model on the first few
[eval] images (Dice between their masks), printing the figures.
"""
import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.core.config import load_config
from allseg.infer.export import export_model
from allseg.evaluate.export_check import compare_exports
from allseg.model.unet import load_trained_model


def main(config_path):
    cfg = load_config(config_path)
    model = load_trained_model(cfg)
    paths = export_model(model, cfg.train.model_dir)
    for name, path in paths.items():
        print(f"  {name:15s} {path}")
    for name, dice in compare_exports(cfg, model, paths).items():
        print(f"  {name:15s} mask Dice against the Keras model: {dice:.4f}")


if __name__ == "__main__":
    run(main, config_parser(__doc__.splitlines()[0]).parse_args().config)
