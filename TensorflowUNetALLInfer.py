"""Segment every image in a folder, each at its own size: masks, cell labels, overlays, counts,
QuPath GeoJSON (and nuclei, for a model that learned them).

    python TensorflowUNetALLInfer.py [CONFIG] [--model pretrained|PATH]
                                     [--images DIR] [--output DIR] [--pixel-size-um UM]
                                     [--cell-diameter PX|auto]
                                     [--scheduler tcp://HOST:8786] [--workers N]

With no options, the folders and model of CONFIG ([infer] images_dir and output_dir, [train]
model_dir). --model pretrained runs the model that ships in pretrained/, with its own input size
and cell settings; --images and --output take the place of the config's folders. Whole-slide
files (pyramidal TIFF, SVS, NDPI, MRXS, ...) are read in windows, spread over a Dask cluster.
"""
import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from pathlib import Path

from allseg.core.cli import DEFAULT_CONFIG, add_model_argument, config_parser, run
from allseg.core.errors import UserError
from allseg.infer.inference import describe_left_out, infer, use_cluster, use_command_line
from allseg.model.shipped import load_for_model


def main(args):
    cfg = load_for_model(args.config, args.model)
    if getattr(cfg, "model_config_only", False) and not (args.images and args.output):
        raise UserError(f"no config here ({DEFAULT_CONFIG} not found): give --images DIR and "
                        "--output DIR, or a config file")
    use_command_line(cfg, args.images, args.output, args.pixel_size_um, args.cell_diameter)
    use_cluster(cfg, args.scheduler, args.workers)
    written, skipped, failed = infer(cfg)
    c = cfg.infer
    nuclei = f", nuclei to {c.nuclei_dir}" if cfg.model.num_classes == 2 else ""
    slides = [path for path in written if path.suffix == ".zarr"]
    if slides:
        print(f"Wrote {len(slides)} slide(s): label stores (zarr) to {c.labels_dir}, cells to "
              f"{Path(c.cells_csv).stem}-<slide>.csv beside {c.cells_csv}, thumbnails to "
              f"{c.overlay_dir}, QuPath GeoJSON to {c.geojson_dir}")
    print(f"Wrote {len(written) - len(slides)} masks to {c.output_dir}{nuclei}, overlays to {c.overlay_dir}, "
          f"QuPath GeoJSON to {c.geojson_dir}, montage {c.montage}; "
          f"{describe_left_out(skipped)}; {len(failed)} unreadable image(s)")
    for path, why in failed:
        print(f"  unreadable: {why}")
    if failed and not written:
        raise SystemExit(1)


def cell_diameter(text):
    """--cell-diameter's value: "auto" or a number (checked against the config's range later)."""
    return text if text == "auto" else float(text)


def arguments():
    parser = config_parser(__doc__.splitlines()[0])
    add_model_argument(parser)
    parser.add_argument("--images", metavar="DIR", help="the folder of images to segment "
                        "(instead of [infer] images_dir)")
    parser.add_argument("--output", metavar="DIR", help="where every output goes: DIR/masks, "
                        "DIR/labels, DIR/overlays, DIR/geojson, DIR/nuclei (a model with "
                        "nuclei), DIR/montage.png, DIR/cell_counts.csv, DIR/cells.csv (instead "
                        "of the config's [infer] places)")
    parser.add_argument("--pixel-size-um", type=float, metavar="UM",
                        help="the side of one pixel in micrometres: the cells CSV adds areas "
                        "and lengths in um (instead of [infer] pixel_size_um)")
    parser.add_argument("--cell-diameter", type=cell_diameter, metavar="PX|auto",
                        help="white cells' size in pixels of your images (level 0 of a slide), "
                        "or auto (instead of [infer] cell_diameter)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786", help="whole slides go to "
                        "the Dask cluster at this address (instead of [infer] scheduler; "
                        "default: a cluster of this machine's cores)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes of the "
                        "cluster on this machine (instead of [infer] slide_workers)")
    return parser


if __name__ == "__main__":
    run(main, arguments().parse_args())
