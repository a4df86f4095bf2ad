"""Where the infer script's time goes, stage by stage, and how near the engine it runs.

    .venv/bin/python benchmarks/infer_stages.py [--model pretrained] [--compare-with DIR]

On the real Early test split (../shared/data/leukemia-early, 197 images) or, without it, 197
generator smears. Each stage is timed alone on one core over every image (ms per image), the
split and measurements also as they were before this benchmark (skimage's reconstruction,
distance map, convex hull and moments) so the ratio comes from one run. Then the infer script's
job end to end against the engine's forward pass alone
on one fixed batch. The forward pass keeps both cores busy, so every core-millisecond of the
other stages is taken from it: end to end / forward is at most E / (E + P), E the engine's
core-ms per image, P the other stages'. --compare-with DIR: the outputs (--output DIR) of the
infer script at another commit, checked byte for byte against this run's.

--scan [N]: a slide scan made of one smear tile repeated N x N times (48: 10752 px, 116 MP), and
the same N*N tiles as separate files, each segmented by the infer script (--model pretrained): its
wall time and peak memory (the process's maximum resident set), the scan's cell count against the
tile's x N*N, and its interior tiles' cells matched one to one to the tile's own.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import DEFAULT_DATA, ROOT
from scipy import ndimage
from skimage import measure, morphology, segmentation

from allseg.cells import instances
from allseg.core.config import load_config
from allseg.evaluate.cell_scoring import match_cells
from allseg.data.images import read_rgb, resize_image, write_encoded, write_png
from allseg.infer import inference
from allseg.infer.engines import load_predictor
from allseg.infer.outputs import overlay
from allseg.infer.predict import predict_probabilities, to_mask
from allseg.model.shipped import choose_model


def inputs(scratch):
    """The Early test images, or as many generator smears written to scratch."""
    split = DEFAULT_DATA / "split.csv"
    if split.is_file():
        rows = csv.DictReader(split.read_text(encoding="utf-8").splitlines())
        names = [r["filename"] for r in rows if r["split"] == "test"]
        return "Early test split", [DEFAULT_DATA / "Original" / "Early" / n for n in names]
    from allseg.data.synthetic import make_smear
    paths = []
    for i in range(197):
        paths.append(Path(scratch) / "smears" / f"smear_{i:03d}.jpg")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(paths[-1]), make_smear(np.random.default_rng([5, i]))[0][..., ::-1])
    return "generator smears", paths


def old_split_and_measure():
    """The label and measurement functions as they were: skimage and scipy throughout."""
    saved = (instances.euclidean_distance, instances.lowered_peaks, instances.convex_area,
             instances.eccentricity)
    instances.euclidean_distance = ndimage.distance_transform_edt
    instances.lowered_peaks = lambda d, h: morphology.reconstruction(d - h, d, method="dilation")
    instances.convex_area = lambda image: measure.regionprops(image.astype(int))[0].area_convex
    instances.eccentricity = lambda image: float(
        measure.regionprops(image.astype(int))[0].eccentricity)
    return saved


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
    saved = old_split_and_measure()
    try:
        for mk, lab, rgb in zip(masks, labels, rgbs):
            assert np.array_equal(timed("before: cell labels, split", instances.label_cells,
                                        mk, *settings), lab)
            timed("before: measurements", instances.measure_cells, lab, rgb, c.pixel_size_um)
    finally:
        (instances.euclidean_distance, instances.lowered_peaks, instances.convex_area,
         instances.eccentricity) = saved
    out = Path(scratch) / "stages"
    out.mkdir(exist_ok=True)
    for i, (mk, lab, rgb) in enumerate(zip(masks, labels, rgbs)):
        shown = timed("overlay", overlay, rgb, mk, lab)
        timed("PNG mask", write_png, out / f"{i}_m.png", (mk * 255).astype(np.uint8))
        timed("PNG labels", write_png, out / f"{i}_l.png", lab.astype(np.uint16))
        timed("PNG overlay", write_png, out / f"{i}_o.png", shown)
        for level in (0, 3, 6, 9):  # the default is 1
            timed(f"PNG overlay, level {level}", write_encoded, out / f"{i}_o{level}.png", shown,
                  ".png", (cv2.IMWRITE_PNG_COMPRESSION, level))
    sizes = {level: sum(f.stat().st_size for f in out.glob(f"*_o{level}.png")) / n / 1024
             for level in (0, 3, 6, 9)}
    sizes[1] = sum(f.stat().st_size for f in out.glob("*_o.png")) / n / 1024
    return {k: 1000 * v / n for k, v in times.items()}, sizes


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


def end_to_end(model, cfg, folder, out):
    shutil.rmtree(out, ignore_errors=True)
    inference.use_command_line(cfg, folder, out)
    start = time.perf_counter()
    written, _, failed = inference.infer(cfg, model)
    assert not failed
    return len(written) / (time.perf_counter() - start)


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
    if args.scan:
        with tempfile.TemporaryDirectory() as scratch:
            return scan_benchmark(args.tile, args.scan, scratch, args.out)
    with tempfile.TemporaryDirectory() as scratch:
        source, paths = inputs(scratch)
        folder = Path(scratch) / "images"
        folder.mkdir()
        for p in paths:
            (folder / p.name).symlink_to(p.resolve())
        cfg = choose_model(load_config(ROOT / "pretrained" / "leukemia_all.config"), args.model)
        cfg.infer.engine = args.engine
        model = load_predictor(cfg)
        stages, png_kib = stage_profile(model, cfg, paths, scratch)
        forward = forward_alone(model, cfg)
        ours = Path(scratch) / "out"
        rates = {"infer script": end_to_end(model, cfg, folder, ours)}
        differ = differing_files(ours, args.compare_with) if args.compare_with else None
    engine_core_ms = 2 * stages["predict (engine, 2 cores)"]
    post_ms = sum(v for k, v in stages.items() if not k.startswith(("predict", "before", "PNG overlay,"))
                  and k != "cell labels, no split")
    result = {"images": f"{len(paths)} {source}", "model": args.model, "engine": args.engine,
              "stages_ms_per_image": stages, "overlay_png_kib": png_kib,
              "forward_alone_images_per_s": forward, "end_to_end_images_per_s": rates,
              "end_to_end_over_forward": {k: v / forward for k, v in rates.items()},
              "bound_E_over_E_plus_P": engine_core_ms / (engine_core_ms + post_ms),
              "files_differing_from_compare_with": differ}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "infer_stages.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Infer stages: {result['images']}, model {args.model}, engine {args.engine}", "",
             "| stage | ms per image |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in stages.items()]
    lines += ["", f"Overlay PNG KiB per image by compression level: {png_kib}", "",
              f"Forward pass alone {forward:.1f} img/s; end to end "
              + ", ".join(f"{k} {v:.1f} img/s ({v / forward:.0%})" for k, v in rates.items())
              + f"; bound E/(E+P) = {result['bound_E_over_E_plus_P']:.0%}",
              f"Files differing from --compare-with: {differ}"]
    (args.out / "infer_stages.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
