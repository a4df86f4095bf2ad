"""Train the U-Net on the [train] pairs of a config.

    python TensorflowUNetALLTrainer.py [CONFIG]
"""
import time

import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.core.config import load_config
from allseg.train.training import train


def main(config_path):
    cfg = load_config(config_path)
    start = time.perf_counter()
    result = train(cfg)
    print(f"Trained {result['epochs_run']} epochs in {time.perf_counter() - start:.0f} s; "
          f"best epoch {result['best_epoch']}: val_loss {result['best_val_loss']:.4f}, "
          f"val_dice {result['best_val_dice']:.4f}")
    if not result["outputs"]:
        print("  (a worker of a cluster: the chief wrote the outputs)")
    for name, path in result["outputs"].items():
        print(f"  {name:12s} {path}")


if __name__ == "__main__":
    run(main, config_parser(__doc__.splitlines()[0]).parse_args().config)
