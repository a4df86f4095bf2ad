"""A synthetic whole slide through the infer script: wall time, peak memory and cells found against
cells made, with 1 and 2 Dask workers, against the same windows run as separate image files.

The slide is a tiled, pyramidal BigTIFF of synthetic smears (allseg/data/synthetic_slide.py);
cells made are its smears' blasts, counted as the project counts cells (label_cells with the
shipped model's cell settings). Peak memory is the summed resident memory of the infer script
and every process it starts (Dask's workers), sampled every 0.2 s. Writes whole_slide.{json,md}
to benchmarks/results/."""
import argparse
import csv
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import zarr
from skimage.segmentation import relabel_sequential

from common import ROOT, table_lines, write_results

from allseg.cells.instances import label_cells
from allseg.cells.matching import match_cells
from allseg.data.slides import open_slide
from allseg.data.synthetic_slide import PITCH, smear_pool, write_synthetic_slide
from allseg.infer.slide_plan import margin_px, plan_windows


def peak_memory(proc, every=0.2):
    """Samples proc's process tree until it ends; returns [peak bytes] (filled once it ends)."""
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(every)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return peak, thread


def infer(images, output, *extra):
    """(seconds, peak GB, cells counted) of the infer script with the shipped model."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "TensorflowUNetALLInfer.py"), "--model",
                             "pretrained", "--images", str(images), "--output", str(output),
                             *map(str, extra)], cwd=ROOT)
    peak, thread = peak_memory(proc)
    if proc.wait():
        raise SystemExit(f"the infer script failed ({proc.returncode})")
    thread.join()
    with open(output / "cell_counts.csv", encoding="utf-8") as table:
        cells = sum(int(row["cells"]) for row in csv.DictReader(table))
    return time.perf_counter() - start, peak[0] / 2 ** 30, cells


def truths(pool):
    """Each pool smear's truth, labelled as the shipped model's cells are."""
    return [label_cells(mask, 50, 3.0, 30) for mask in smear_pool(pool)[1]]


def matched(label_store, layout, truth):
    """(made cells found, one to one at IoU >= 0.5; objects found that match none): each smear
    of the slide's label store against its truth, a row of smears at a time."""
    labels = zarr.open_array(str(label_store), mode="r")
    found = extra = 0
    for row in range(layout.shape[0]):
        strip = labels[row * PITCH:(row + 1) * PITCH]
        for col, smear in enumerate(layout[row]):
            part, _, _ = relabel_sequential(strip[:, col * PITCH:(col + 1) * PITCH])
            score = match_cells(truth[smear], part.astype(np.int32))
            found, extra = found + score["tp"], extra + score["fp"]
    return found, extra


def separate_files(slide_path, folder, side=2048):
    """Writes the windows the slide run reads (cores with their margins) as JPEG files."""
    folder.mkdir(parents=True, exist_ok=True)
    slide = open_slide(slide_path)
    for window in plan_windows(slide.shapes[0], side, margin_px(21.6, 1.0)):
        rgb = slide.read(0, window.read_top, window.read_left, window.read_height,
                         window.read_width)
        cv2.imwrite(str(folder / f"window-{window.index:05d}.jpg"), rgb[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    slide.close()


def measure(args):
    rows, scratch = [], args.scratch
    for side in args.sides:
        folder = scratch / f"slide-{side}"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        layout, _ = write_synthetic_slide(folder / "smear.tif", side, pool=args.pool)
        truth = truths(args.pool)
        made = sum(int(truth[i].max()) for i in layout.ravel())
        gpx = (side * PITCH) ** 2 / 1e9
        print(f"{gpx:.2f} Gpx slide written in {time.perf_counter() - start:.0f} s; "
              f"{made} cells made", flush=True)
        for workers in args.workers:
            out = scratch / f"out-{side}-{workers}"
            seconds, peak, found = infer(folder, out, "--workers", workers)
            made_found, extra = matched(out / "labels" / "smear.zarr", layout, truth)
            geojson = (out / "geojson" / "smear.geojson").read_bytes()
            first = first if workers != args.workers[0] else geojson
            rows.append({"gpx": round(gpx, 3), "run": f"slide, {workers} worker(s)",
                         "seconds": round(seconds, 1), "peak_gb": round(peak, 2),
                         "cells_found": found, "cells_made": made,
                         "made_found_once": made_found, "extra_objects": extra,
                         "geojson_as_first_run": geojson == first})
            print(rows[-1], flush=True)
        if args.separate:
            separate_files(folder / "smear.tif", scratch / f"windows-{side}")
            seconds, peak, found = infer(scratch / f"windows-{side}", scratch / f"out-{side}-files")
            rows.append({"gpx": round(gpx, 3), "run": "the same windows as image files",
                         "seconds": round(seconds, 1), "peak_gb": round(peak, 2),
                         "cells_found": found, "cells_made": made})
            print(rows[-1], flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sides", type=int, nargs="+", default=[134],
                   help=f"smears a side for each slide ({PITCH} px each; 134: 1.03 Gpx)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--pool", type=int, default=64, help="distinct smears laid out")
    p.add_argument("--separate", action="store_true",
                   help="also run the same windows as separate image files")
    p.add_argument("--scratch", type=lambda s: ROOT / s, default=ROOT / "bench_runs" / "slides")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "whole_slide"))
    p.add_argument("--append", action="store_true",
                   help="add the rows to those of the results file instead of replacing them")
    args = p.parse_args()
    earlier = json.loads(Path(f"{args.out}.json").read_text()) if args.append else {}
    rows = earlier.get("rows", []) + measure(args)
    header = ["Gpx", "run", "wall s", "peak GB", "cells found", "cells made",
              "made cells found once", "found, matching none", "GeoJSON as the first run's"]
    lines = table_lines(header, [[r["gpx"], r["run"], r["seconds"], r["peak_gb"],
                                  r["cells_found"], r["cells_made"],
                                  *(r.get(k, "-") for k in ("made_found_once", "extra_objects",
                                                            "geojson_as_first_run"))]
                                 for r in rows])
    commands = earlier.get("commands", []) + [
        "python benchmarks/whole_slide.py " + " ".join(sys.argv[1:])]
    write_results(args.out, {"commands": commands, "rows": rows},
                  "\n".join([*(f"`{c}`  " for c in commands), "", *lines]))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
