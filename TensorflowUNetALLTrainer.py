"""Train the U-Net on the [train] pairs of a config, or fine-tune a model on a lab's own outlines.

    python TensorflowUNetALLTrainer.py [CONFIG]
    python TensorflowUNetALLTrainer.py --images DIR [--masks DIR] --output DIR
                                       [--model pretrained|PATH|none] [--epochs N]
                                       [--pixel-size-um UM] [--cell-diameter PX]
    python TensorflowUNetALLTrainer.py --cells DIR --output DIR [--model pretrained|PATH]

The second form fine-tunes: it starts from the shipped model (--model pretrained, the default),
fits it to the masks (binary, 0/128/255 with nuclei, 16-bit labels, QuPath GeoJSON or Cellpose's
files, matched to the images by file name; without --masks, Cellpose's <name>_masks.png or
<name>_seg.npy beside the images), scores it against where it started on images it held out, and
writes the better one to DIR/best_model.keras with its config and card:
TensorflowUNetALLInfer.py --model DIR runs it.

The third fits the per-cell blast call to a lab's labelled cells (DIR/blast/, DIR/normal/: images
whose central cell carries the folder's label; or images with QuPath GeoJSON beside them, cells
classified Blast or Normal), scores it across folds against the model's own call, and writes the
better one beside the model in DIR: --model DIR then calls each cell.
"""
import time
from pathlib import Path

import allseg.core.quiet_start  # noqa: F401  (first: no CUDA start-up noise on CPU-only machines)
from allseg.core.cli import DEFAULT_CONFIG, config_parser, run
from allseg.core.config import load_config
from allseg.core.errors import UserError


def main(args):
    if args.cells:
        return fit_cells(args)
    if args.images or args.masks or args.output:
        return fine_tune(args)
    # imported here: TensorFlow's start-up is not needed for a bad command line's message
    from allseg.train.training import train

    cfg = load_config(args.config)
    start = time.perf_counter()
    result = train(cfg)
    print(f"Trained {result['epochs_run']} epochs in {time.perf_counter() - start:.0f} s; "
          f"best epoch {result['best_epoch']}: {result['monitor']} {result['best_loss']:.4f}, "
          f"val_dice {result['best_dice']:.4f}")
    if not result["outputs"]:
        print("  (a worker of a cluster: the chief wrote the outputs)")
    for name, path in result["outputs"].items():
        print(f"  {name:12s} {path}")


def fine_tune(args):
    # imported here: TensorFlow's start-up is not needed for a bad command line's message
    from allseg.evaluate.fine_tune import fine_tune as fine_tune_on
    from allseg.train.fine_tune import FineTuneSettings

    missing = [f"--{name}" for name in ("images", "output") if not getattr(args, name)]
    if missing:
        raise UserError(f"fine-tuning needs --images and --output (and --masks unless the masks "
                        f"sit beside the images); {', '.join(missing)} not given")
    if args.config != DEFAULT_CONFIG:
        raise UserError(f"{args.config}: fine-tuning takes no config (its settings come with "
                        "--model); give either a config or --images/--masks/--output")
    for name, value, low in (("--epochs", args.epochs, 0), ("--pixel-size-um", args.pixel_size_um, 0),
                             ("--cell-diameter", args.cell_diameter, 0)):
        if value is not None and not value > low:
            raise UserError(f"{name} {value:g}: allowed: a number above {low}")
    settings = FineTuneSettings(**({} if args.epochs is None else {"epochs": args.epochs}))
    facts = fine_tune_on(Path(args.images), args.masks and Path(args.masks), Path(args.output),
                         args.model, settings, args.pixel_size_um, args.cell_diameter)
    print(f"Wrote {Path(args.output) / 'best_model.keras'} (the {facts['kept']} model), its "
          f"config and card; segment with: TensorflowUNetALLInfer.py --model {args.output} "
          "--images DIR --output DIR")


def fit_cells(args):
    # imported here: TensorFlow's start-up is not needed for a bad command line's message
    from allseg.evaluate.blast_fit import fit_blasts

    if not args.output:
        raise UserError("--cells needs --output DIR: where the model and its blast call go")
    given = [name for name in ("images", "masks", "epochs", "pixel_size_um", "cell_diameter")
             if getattr(args, name) is not None]
    if given or args.config != DEFAULT_CONFIG:
        raise UserError(f"--cells takes only --output and --model; "
                        f"{', '.join('--' + g.replace('_', '-') for g in given) or args.config} "
                        "belong to fine-tuning the segmentation or to a config's training")
    facts = fit_blasts(Path(args.cells), Path(args.output), args.model)
    print(f"Wrote the {facts['kept']} blast call beside {Path(args.output) / 'best_model.keras'}; "
          f"call cells with: TensorflowUNetALLInfer.py --model {args.output} --images DIR "
          "--output DIR")


def arguments():
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", metavar="DIR", help="fine-tune: the lab's images")
    parser.add_argument("--masks", metavar="DIR", help="fine-tune: their masks, one per image, "
                        "named as the image (PNG/TIFF/BMP, <name>.geojson from QuPath, "
                        "<name>_masks.png or <name>_seg.npy from Cellpose); leave out when "
                        "Cellpose's masks sit beside the images")
    parser.add_argument("--output", metavar="DIR", help="fine-tune or --cells: where the model "
                        "goes")
    parser.add_argument("--cells", metavar="DIR", help="fit the blast call to the cells in "
                        "DIR/blast/ and DIR/normal/ (images centred on one cell each), or to "
                        "the Blast and Normal cells of the QuPath GeoJSON beside DIR's images")
    parser.add_argument("--model", default="pretrained", metavar="pretrained|PATH|none",
                        help="fine-tune from the shipped model (default), another model the "
                        "project made, or none (from scratch)")
    parser.add_argument("--epochs", type=int, help="fine-tune: epochs of 25 batches of random "
                        "crops (default 60)")
    parser.add_argument("--pixel-size-um", type=float, metavar="UM",
                        help="fine-tune: the images' pixel size, kept in the model's config so "
                        "its cells are measured in um")
    parser.add_argument("--cell-diameter", type=float, metavar="PX",
                        help="fine-tune: your cells' diameter in pixels, which sets the scale it "
                        "trains and segments at (default: the median of your outlined cells)")
    return parser


if __name__ == "__main__":
    run(main, arguments().parse_args())
