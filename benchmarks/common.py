"""What the benchmarks share: the project on sys.path, a scratch copy of the reference split and
configs pointed at it, a training run or an earlier one, the colour rule, cell summaries, pictures
drawn twice (masks only for the project, with the smears for scratch), results as JSON and .md."""
import argparse
import configparser
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
COLOUR_RULE = 65  # blue - green above this: the no-training yardstick every table carries


def parser(doc, data=DATA / "leukemia-early", scratch=None, assets=True, config=None):
    """The options the real-data benchmarks share: --data, --scratch, --out (and --assets); with a
    config (a file name under configs/), --config (that file by default) and --reuse-run."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", type=Path, default=data)
    if scratch:
        p.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / scratch)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    if assets:
        p.add_argument("--assets", type=Path, default=ROOT / "asset")
    if config:
        p.add_argument("--config", type=Path, default=ROOT / "configs" / config)
        p.add_argument("--reuse-run", type=Path, help="score the model of this earlier run again "
                       "(e.g. after changing prediction settings) instead of training")
    return p


def parse(p):
    """p's arguments, with the folders the run writes into made."""
    args = p.parse_args()
    for folder in (args.out, getattr(args, "assets", None), getattr(args, "scratch", None)):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    return args


def run(script, *args):
    """Runs a project script, streaming its output; returns wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{script} failed with exit code {proc.returncode}")
    return time.perf_counter() - start


def reference_split(data, scratch, category="Early"):
    """ALL/ in scratch, reproduced from data/split.csv by split_master.py (once)."""
    if not (Path(data) / "split.csv").is_file():
        raise SystemExit(f"{data}: no split.csv there; pass --data with the Kaggle layout")
    dest = Path(scratch) / "ALL"
    if not (dest / "split.csv").exists():
        run("split_master.py", "--master", data, "--category", category, "--split-csv",
            Path(data) / "split.csv", "--dest", dest, "--mini-test", Path(scratch) / "mini_test")
    return dest


def write_config(base_config, path, run_dir, all_dir, overrides=None):
    """A copy of base_config with data and output paths under run_dir and the given overrides
    ({"section.key": literal text})."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(base_config, encoding="utf-8")
    out, split = Path(run_dir), Path(all_dir)
    values = {"train.model_dir": out / "models", "train.eval_dir": out / "eval",
              "train.image_datapath": split / "train" / "original",
              "train.mask_datapath": split / "train" / "segmented",
              "eval.image_datapath": split / "test" / "original",
              "eval.mask_datapath": split / "test" / "segmented",
              "infer.images_dir": split.parent / "mini_test",
              "infer.output_dir": out / "mini_test_output"}
    for dotted, text in {**{k: quoted(v) for k, v in values.items()}, **(overrides or {})}.items():
        section, key = dotted.split(".")
        parser[section][key] = text
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return Path(path)


def quoted(path):
    """A path as a config's value."""
    return f'"{Path(path).as_posix()}"'


def train_or_reuse(args, category="Early", overrides=None):
    """(split folder, run folder, its config, training seconds): the reference split of category
    made, then args.config trained in a new run folder, or, with args.reuse_run, that run's model
    under a config written beside the one it trained with (so a rescore with other prediction
    settings never overwrites it)."""
    from allseg.core.files import write_text
    all_dir = reference_split(args.data, args.scratch, category)
    run_dir = args.reuse_run or args.scratch / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    tag = getattr(args, "tag", "")
    name = f"config-rescore{tag and '-' + tag}" if args.reuse_run else "config"
    config = write_config(args.config, run_dir / name, run_dir, all_dir, overrides)
    if not args.reuse_run:
        seconds = run("TensorflowUNetALLTrainer.py", config)
        write_text(run_dir / "train_seconds.txt", f"{seconds:.1f}\n")
    return all_dir, run_dir, config, float((run_dir / "train_seconds.txt").read_text())


def validation_pairs(cfg):
    """{category: its pairs}, categories in name order, of the pairs the trainer holds out of the
    train rows (same seed and fraction)."""
    from allseg.data.pairing import find_category_pairs, split_pairs
    t = cfg.train
    held_out = split_pairs(find_category_pairs(t.image_datapath, t.mask_datapath, t.category),
                           t.validation_split, t.seed)[1]
    return {name: [p for p in held_out if p.category == name]
            for name in sorted({p.category for p in held_out})}


def blue_minus_green(rgb):
    return rgb[..., 2].astype(np.int16) - rgb[..., 1].astype(np.int16)


def cell_summary(preds_and_truths, c, scale=1.0):
    """Pooled cell scores of (prediction, truth) mask pairs, counted by the [infer] cell keys c
    as the evaluator counts them (one to one at IoU >= 0.5); scale as in cell_settings."""
    from allseg.cells.instances import cell_settings
    from allseg.cells.scoring import score_cells, summarize_cells
    keys = cell_settings(c, scale)
    return summarize_cells([score_cells(p, t, *keys)[0] for p, t in preds_and_truths], *keys)


def as_rgb(mask):
    """A boolean mask as a black and white RGB picture."""
    import cv2
    return cv2.cvtColor(mask.astype(np.uint8) * 255, cv2.COLOR_GRAY2RGB)


def caption(image, text, scale=0.4, y=14):
    import cv2
    cv2.putText(image, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1, cv2.LINE_AA)
    return image


def write_pictures(rows, public_path, private_path, axes=(0, 0), front=1):
    """rows: (smear, masks-only picture) pairs. The masks-only pictures to public_path (committed:
    no dataset image is ever copied into the project), each with its smear in front (joined on
    axis front) to private_path (scratch); axes: the axis each file's pictures are joined on."""
    from allseg.data.images import write_png
    public = [picture for _, picture in rows]
    private = [np.concatenate([smear, picture], axis=front) for smear, picture in rows]
    for pictures, path, axis in ((public, public_path, axes[0]), (private, private_path, axes[1])):
        if pictures:
            write_png(path, np.concatenate(pictures, axis=axis))


def table_lines(header, rows):
    """A Markdown table's lines: the column names, the rule under them, then each row's cells."""
    line = lambda cells: "| " + " | ".join(map(str, cells)) + " |"  # noqa: E731
    return [line(header), "|---" * len(header) + "|", *map(line, rows)]


def write_results(stem, data, text):
    """A benchmark's results: data to stem.json, the Markdown text to stem.md."""
    from allseg.core.files import write_json, write_text
    write_json(f"{stem}.json", data)
    write_text(f"{stem}.md", text + "\n")
