"""Where the infer script's time goes, stage by stage, and how near the engine it runs.

On the real Early test split (../shared/data/leukemia-early, 197 images) or, without it, 197
generator smears. Each stage is timed alone on one core over every image (ms per image); then the
infer script's job end to end against the engine's forward pass alone on one fixed batch. The
forward pass keeps both cores busy, so every core-millisecond of the other stages is taken from
it: end to end / forward is at most E / (E + P), E the engine's core-ms per image, P the other
stages'. --compare-with DIR: the outputs (--output DIR) of the infer script at another commit,
checked byte for byte against this run's.

--scan [N]: a slide scan made of one smear tile repeated N x N times (48: 10752 px, 116 MP), and
the same N*N tiles as separate files, each segmented by the infer script (--model pretrained): its
wall time and peak memory (the process's maximum resident set), the scan's cell count against the
tile's x N*N, and its interior tiles' cells matched one to one to the tile's own.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import DEFAULT_DATA, ROOT, write_results
from skimage import segmentation

from allseg.cells import instances
from allseg.core.config import load_config
from allseg.cells.matching import match_cells
from allseg.data.images import read_rgb, resize_image, write_png
from allseg.data.splitting import read_split_csv
from allseg.infer import inference
from allseg.infer.engines import load_predictor
from allseg.infer.outputs import overlay
from allseg.infer.predict import predict_probabilities, to_mask
from allseg.model.shipped import choose_model


def inputs(folder):
    """The Early test images linked into folder, or as many generator smears written there."""
    folder.mkdir()
    split = DEFAULT_DATA / "split.csv"
    if split.is_file():
        names = [name for name, part in read_split_csv(split).items() if part == "test"]
        for name in names:
            (folder / name).symlink_to((DEFAULT_DATA / "Original" / "Early" / name).resolve())
        return "Early test split", [folder / name for name in names]
    from allseg.data.synthetic import make_smear
    paths = [folder / f"smear_{i:03d}.jpg" for i in range(197)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(path), make_smear(np.random.default_rng([5, i]))[0][..., ::-1])
    return "generator smears", paths


def stage_profile(model, cfg, paths, scratch):
    m, c, settings = cfg.model, cfg.infer, instances.cell_settings(cfg.infer)
    times, n = {}, len(paths)

    def timed(name, f, *args):
        start = time.perf_counter()
        out = f(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        return out

    rgbs = [timed("read", read_rgb, p) for p in paths]
    masks, batch = [], cfg.train.batch_size
    for i in range(0, n, batch):
        x = np.stack([timed("resize", resize_image, r, m.image_height, m.image_width)
                      for r in rgbs[i:i + batch]])
        probs = timed("predict (engine, 2 cores)", predict_probabilities, model, x)
        masks += [timed("threshold", to_mask, p, *r.shape[:2], m.min_area, m.threshold)
                  for r, p in zip(rgbs[i:i + batch], probs)]
    labels = [timed("cell labels, no split", instances.label_cells, mk, settings[0]) for mk in masks]
    labels = [timed("cell labels, split", instances.label_cells, mk, *settings) for mk in masks]
    for lab, rgb in zip(labels, rgbs):
        timed("measurements", instances.measure_cells, lab, rgb, c.pixel_size_um)
    out = Path(scratch) / "stages"
    out.mkdir(exist_ok=True)
    for i, (mk, lab, rgb) in enumerate(zip(masks, labels, rgbs)):
        shown = timed("overlay", overlay, rgb, mk, lab)
        timed("PNG mask", write_png, out / f"{i}_m.png", (mk * 255).astype(np.uint8))
        timed("PNG labels", write_png, out / f"{i}_l.png", lab.astype(np.uint16))
        timed("PNG overlay", write_png, out / f"{i}_o.png", shown)
    return {k: 1000 * v / n for k, v in times.items()}


def forward_alone(model, cfg, seconds=5.0):
    m, batch = cfg.model, cfg.train.batch_size
    x = np.random.default_rng(0).integers(0, 256, (batch, m.image_height, m.image_width, 3),
                                          dtype=np.uint8)
    for _ in range(3):
        model.predict_on_batch(x)
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        model.predict_on_batch(x)
        images += batch
    return images / (time.perf_counter() - start)


def differing_files(ours, theirs):
    """Files under either folder that the other lacks or holds with other bytes."""
    names = {p.relative_to(d) for d in (ours, theirs) for p in Path(d).rglob("*") if p.is_file()}

    def same(name):
        a, b = Path(ours) / name, Path(theirs) / name
        return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()

    return sorted(str(name) for name in names if not same(name))


def infer_script(images, out):
    """(wall seconds, peak resident MB) of one run of the infer script with the shipped model."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "TensorflowUNetALLInfer.py"), "--model",
                             "pretrained", "--images", str(images), "--output", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest so far
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"the infer script failed on {images}"
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def scan_benchmark(tile_path, n, scratch, out):
    tile = cv2.imread(str(tile_path))
    size = tile.shape[0]
    folders = {name: Path(scratch) / name for name in ("tile", "scan", "tiles")}
    for folder in folders.values():
        folder.mkdir()
    cv2.imwrite(str(folders["tile"] / "tile.png"), tile)
    cv2.imwrite(str(folders["scan"] / "scan.png"), np.tile(tile, (n, n, 1)))
    for i in range(n * n):
        cv2.imwrite(str(folders["tiles"] / f"tile_{i:05d}.png"), tile)
    runs = {name: infer_script(folder, Path(scratch) / f"{name}_out")
            for name, folder in folders.items()}
    read = lambda name, stem: cv2.imread(str(Path(scratch) / f"{name}_out" / "labels" / f"{stem}.png"),
                                         cv2.IMREAD_UNCHANGED).astype(np.int32)  # noqa: E731
    one, scan = read("tile", "tile"), read("scan", "scan")
    # Cells cut by the tile's edge join their neighbours' in the scan: left out of the match
    edge = np.isin(one, np.unique(np.r_[one[0], one[-1], one[:, 0], one[:, -1]])) & (one > 0)

    def cells(labels):  # those not only on an edge cell's pixels, numbered 1..n
        kept = np.isin(labels, np.unique(labels[~edge]))
        return segmentation.relabel_sequential(np.where(kept, labels, 0))[0]

    match = [match_cells(cells(one), cells(scan[y * size:(y + 1) * size, x * size:(x + 1) * size]))
             for y in range(1, n - 1) for x in range(1, n - 1)]
    tp, fp, fn = (sum(mt[k] for mt in match) for k in ("tp", "fp", "fn"))
    result = {"tile": str(tile_path), "scan_px": f"{n * size} x {n * size}",
              "cells_in_tile": int(one.max()), "cells_in_scan": int(scan.max()),
              "expected": int(one.max()) * n * n, "interior_tiles": len(match),
              "interior_cell_f1": 2 * tp / max(1, 2 * tp + fp + fn),
              "seconds": {k: v[0] for k, v in runs.items()},
              "peak_mb": {k: v[1] for k, v in runs.items()}}
    result["scan_over_tiles_time"] = result["seconds"]["scan"] / result["seconds"]["tiles"]
    result["count_error"] = result["cells_in_scan"] / result["expected"] - 1
    (out / "infer_scan.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--engine", default="openvino")
    parser.add_argument("--compare-with", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--scan", type=int, nargs="?", const=48, metavar="N")
    parser.add_argument("--tile", type=Path, default=ROOT / "tests/data/smears/synthetic_early.jpg",
                        help="--scan's tile (the default's six cells lie inside it)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scan:
        with tempfile.TemporaryDirectory() as scratch:
            return scan_benchmark(args.tile, args.scan, scratch, args.out)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        source, paths = inputs(folder)
        cfg = choose_model(load_config(ROOT / "pretrained" / "leukemia_all.config"), args.model)
        cfg.infer.engine = args.engine
        model = load_predictor(cfg)
        stages = stage_profile(model, cfg, paths, scratch)
        forward = forward_alone(model, cfg)
        ours = Path(scratch) / "out"  # the infer script's job end to end, as its command runs it
        inference.use_command_line(cfg, folder, ours)
        start = time.perf_counter()
        written, _, failed = inference.infer(cfg, model)
        assert not failed
        rates = {"infer script": len(written) / (time.perf_counter() - start)}
        differ = differing_files(ours, args.compare_with) if args.compare_with else None
    engine_core_ms = 2 * stages["predict (engine, 2 cores)"]
    # P: every stage the infer script runs besides the engine (it labels cells with the split)
    post_ms = sum(v for k, v in stages.items()
                  if not k.startswith("predict") and k != "cell labels, no split")
    result = {"images": f"{len(paths)} {source}", "model": args.model, "engine": args.engine,
              "stages_ms_per_image": stages, "forward_alone_images_per_s": forward,
              "end_to_end_images_per_s": rates,
              "end_to_end_over_forward": {k: v / forward for k, v in rates.items()},
              "bound_E_over_E_plus_P": engine_core_ms / (engine_core_ms + post_ms),
              "files_differing_from_compare_with": differ}
    lines = [f"# Infer stages: {result['images']}, model {args.model}, engine {args.engine}", "",
             "| stage | ms per image |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in stages.items()]
    lines += ["", f"Forward pass alone {forward:.1f} img/s; end to end "
              + ", ".join(f"{k} {v:.1f} img/s ({v / forward:.0%})" for k, v in rates.items())
              + f"; bound E/(E+P) = {result['bound_E_over_E_plus_P']:.0%}",
              f"Files differing from --compare-with: {differ}"]
    write_results(args.out / "infer_stages", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
