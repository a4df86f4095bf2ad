"""TensorflowUNet: the U-Net built from a config file. Run it to print the model summary.

    python TensorflowUNet.py [CONFIG]
"""
import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.model.unet import TensorflowUNet, load_trained_model

__all__ = ["TensorflowUNet", "load_trained_model"]


def main(config_path):
    unet = TensorflowUNet(config_path)
    if unet.config.model.show_summary:
        unet.summary()
    else:
        print(f"Total params: {unet.model.count_params():,}")


if __name__ == "__main__":
    args = config_parser("Build the U-Net a config describes and print its summary.").parse_args()
    run(main, args.config)
