"""Predict masks for every image in [infer] images_dir, each at the image's own size.

    python TensorflowUNetALLInfer.py [CONFIG]
"""
import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import config_parser, run
from allseg.core.config import load_config
from allseg.infer.inference import describe_left_out, infer


def main(config_path):
    cfg = load_config(config_path)
    written, skipped, failed = infer(cfg)
    c = cfg.infer
    print(f"Wrote {len(written)} masks to {c.output_dir}, overlays to {c.overlay_dir}, "
          f"montage {c.montage}; {describe_left_out(skipped)}; {len(failed)} unreadable image(s)")
    for path, why in failed:
        print(f"  unreadable: {why}")
    if failed and not written:
        raise SystemExit(1)


if __name__ == "__main__":
    run(main, config_parser(__doc__.splitlines()[0]).parse_args().config)
