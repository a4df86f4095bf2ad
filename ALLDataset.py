"""ALLDataset: original/segmented image pairs for training and evaluation.

    python ALLDataset.py [CONFIG]    checks and counts the [train] and [eval] pairs
"""
import allseg  # noqa: F401
from allseg.cli import config_parser, run
from allseg.config import load_config
from allseg.dataset import ALLDataset

__all__ = ["ALLDataset"]


def main(config_path):
    cfg = load_config(config_path)
    for section in ("train", "eval"):
        data = ALLDataset.from_config(cfg, section)
        part = getattr(cfg, section)
        print(f"[{section}] {len(data)} readable pairs in {part.image_datapath}{part.category} "
              f"and {part.mask_datapath}{part.category}")


if __name__ == "__main__":
    args = config_parser("Check that the config's image/mask pairs pair up and read.").parse_args()
    run(main, args.config)
