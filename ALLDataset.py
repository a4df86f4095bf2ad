"""ALLDataset: original/segmented image pairs for training and evaluation.

    python ALLDataset.py [CONFIG]    checks and counts the [train] and [eval] pairs
"""
import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.core.config import load_config
from allseg.data.dataset import ALLDataset
from allseg.data.pairing import describe

__all__ = ["ALLDataset"]


def main(config_path):
    cfg = load_config(config_path)
    for section in ("train", "eval"):
        data = ALLDataset.from_config(cfg, section)
        part = getattr(cfg, section)
        print(f"[{section}] {len(data)} readable pairs in "
              f"{describe(part.image_datapath, part.category)} and its masks in {part.mask_datapath}")


if __name__ == "__main__":
    args = config_parser("Check that the config's image/mask pairs pair up and read.").parse_args()
    run(main, args.config)
