"""Whole slides read in windows: the same cells as the pixels read whole, the same outputs with
one worker or two (one of them an existing cluster reached with --scheduler), a killed run
resumed to the same outputs, and bad slides named while the others are done."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import shapely
import tifffile

from allseg.core.errors import DataError
from allseg.data.images import read_rgb
from allseg.data.slides import TiffSlide, is_slide, open_slide
from allseg.data.synthetic_slide import PITCH, write_synthetic_slide
from allseg.infer.slide_plan import choose_level, neighbours, plan_windows, tissue_mask
from conftest import ROOT, run_script, script_process_options, tiny_config_text

SIDE = 7          # smears a side: 1,680 px
WINDOW = 512      # px: a 4 x 4 grid of windows, so cells are cut by windows' edges


@pytest.fixture(scope="module")
def slide_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("slides")
    (root / "in").mkdir()
    write_synthetic_slide(root / "in" / "smear.tif", SIDE, pool=16, levels=2)
    config = root / "slides.config"
    config.write_text(tiny_config_text(root) + f"slide_window = {WINDOW}\n", encoding="utf-8")
    return root, config


def infer(config, images, output, *extra, check=True):
    return run_script("TensorflowUNetALLInfer.py", config, "--model", "pretrained", "--images",
                      images, "--output", output, *extra, check=check)


@pytest.fixture(scope="module")
def two_workers(slide_folder):
    root, config = slide_folder
    proc = infer(config, root / "in", root / "two", "--workers", "2")
    return root / "two", proc


def test_slide_cells_are_those_of_the_pixels_read_whole(slide_folder, two_workers):
    root, config = slide_folder
    out, proc = two_workers
    assert "16 of 16 windows hold tissue" in proc.stdout
    whole = root / "whole"
    whole.mkdir()
    level0 = TiffSlide(root / "in" / "smear.tif")
    cv2.imwrite(str(whole / "smear.png"), level0.read(0, 0, 0, *level0.shapes[0])[..., ::-1])
    infer(config, whole, root / "whole-out")
    as_image = cv2.imread(str(root / "whole-out" / "labels" / "smear.png"), cv2.IMREAD_UNCHANGED)
    import zarr
    as_slide = zarr.open_array(str(out / "labels" / "smear.zarr"), mode="r")[:]
    assert as_slide.shape == as_image.shape == (SIDE * PITCH,) * 2
    assert np.mean((as_slide > 0) == (as_image > 0)) > 0.998
    # Windows are tiled from their own corners, so faint specks near the size limit come and go
    # (11 of 371 on this slide, all under 230 px): the count agrees within the 2%
    slide_cells, image_cells = int(as_slide.max()), int(as_image.max())
    assert abs(slide_cells - image_cells) <= 0.02 * image_cells
    assert len(np.unique(as_slide)) - 1 == slide_cells  # numbered 1..n, each cell painted


def test_slide_outputs_agree_with_one_another(two_workers):
    out, _ = two_workers
    features = json.loads((out / "geojson" / "smear.geojson").read_text())["features"]
    rows = (out / "cells-smear.csv").read_text().splitlines()
    counts = (out / "cell_counts.csv").read_text().splitlines()
    assert len(features) == len(rows) - 1 > 100
    assert len({f["id"] for f in features}) == len(features)
    assert counts[1].startswith(f"smear.tif,{len(features)},")
    # Outlines in the slide's pixels: each around its CSV centre (a pixel's centre is at +0.5)
    header = rows[0].split(",")
    for feature, row in zip(features, rows[1:]):
        values = dict(zip(header, row.split(",")))
        centre = shapely.geometry.shape(feature["geometry"]).centroid
        assert abs(centre.x - float(values["centroid_col"]) - 0.5) < 1.5
        assert abs(centre.y - float(values["centroid_row"]) - 0.5) < 1.5
    assert (out / "overlays" / "smear.png").is_file()
    assert not list((out / "labels").glob(".*.windows"))  # the finished windows are cleared


def test_one_worker_of_an_existing_cluster_writes_the_same(slide_folder, two_workers):
    from distributed import LocalCluster
    root, config = slide_folder
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        infer(config, root / "in", root / "one", "--scheduler", cluster.scheduler_address)
    for name in ("geojson/smear.geojson", "cells-smear.csv", "cell_counts.csv"):
        assert (root / "one" / name).read_bytes() == (two_workers[0] / name).read_bytes(), name


def test_a_killed_run_resumes_to_the_same_outputs(slide_folder, two_workers):
    root, config = slide_folder
    out = root / "killed"
    args = [sys.executable, str(ROOT / "TensorflowUNetALLInfer.py"), str(config), "--model",
            "pretrained", "--images", str(root / "in"), "--output", str(out), "--workers", "1"]
    options = script_process_options()
    options.pop("preexec_fn")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **options)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("labels/.*.windows/*.npz"))) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(out.glob("labels/.*.windows/*.npz"))) >= 3
    assert not (out / "geojson" / "smear.geojson").exists()  # nothing looks complete
    rerun = infer(config, root / "in", out, "--workers", "1")
    assert "16/16" in rerun.stdout
    for name in ("geojson/smear.geojson", "cells-smear.csv"):
        assert (out / name).read_bytes() == (two_workers[0] / name).read_bytes(), name


def test_bad_slides_are_named_and_the_others_done(slide_folder, tmp_path):
    root, config = slide_folder
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.tif").write_bytes((root / "in" / "smear.tif").read_bytes())
    (folder / "garbage.svs").write_bytes(b"not a slide at all" * 100)
    whole = (root / "in" / "smear.tif").read_bytes()
    (folder / "cut.tif").write_bytes(whole[:len(whole) // 3])
    # Stained but cell-less, with no pixel size: nothing to tell the cells' size by
    with tifffile.TiffWriter(folder / "blank.tif") as tif:
        for side, sub in ((1024, {"subifds": 1}), (512, {"subfiletype": 1})):
            tif.write(np.full((side, side, 3), (200, 150, 210), np.uint8), tile=(256, 256),
                      photometric="rgb", **sub)
    proc = infer(config, folder, tmp_path / "out")
    said = proc.stdout + proc.stderr
    assert "garbage.svs: no slide reader opens it" in said
    assert "cut.tif" in said and "unreadable" in said
    assert "blank.tif: the model found no cells it could size" in said
    assert "give --cell-diameter PX" in said
    assert (tmp_path / "out" / "geojson" / "good.geojson").is_file()
    assert not (tmp_path / "out" / "geojson" / "cut.geojson").exists()
    assert not (tmp_path / "out" / "geojson" / "garbage.geojson").exists()


def test_a_slide_whose_cells_are_far_from_the_calls_size_is_warned_of(slide_folder, tmp_path):
    from allseg.cells.blast_call import BlastCall, blast_call_path
    from allseg.cells.cell_features import FEATURE_NAMES
    from allseg.model.shipped import SHIPPED_MODEL
    root, config = slide_folder
    model = tmp_path / "model" / SHIPPED_MODEL.name
    model.parent.mkdir()
    for suffix in (".keras", ".config"):
        model.with_suffix(suffix).write_bytes(SHIPPED_MODEL.with_suffix(suffix).read_bytes())
    n = len(FEATURE_NAMES)
    call = BlastCall((0.0,) * n, (1.0,) * n, (0.0,) * n, 1.0, 0.5, {"median_diameter_px": 4.0})
    blast_call_path(model).write_text(call.to_json(), encoding="utf-8")
    proc = run_script("TensorflowUNetALLInfer.py", config, "--model", model, "--images",
                      root / "in", "--output", tmp_path / "out", "--workers", "1")
    assert "Warning: the blast call was fitted on cells 4.0 px across" in proc.stdout
    with open(tmp_path / "out" / "cell_counts.csv", encoding="utf-8") as table:
        row, = csv.DictReader(table)
    assert int(row["cells"]) > 100 and row["blasts"] == row["cells"]  # bias 1: all called blasts
    assert row["blast_percent"] == "100.0"


def test_windows_tile_the_level_once_and_skip_the_glass():
    windows = plan_windows((1000, 700), 256, 40)
    cover = np.zeros((1000, 700), int)
    for w in windows:
        cover[w.top:w.top + w.height, w.left:w.left + w.width] += 1
        assert w.read_top == max(0, w.top - 40) and w.read_height <= w.height + 80
    assert (cover == 1).all() and len(windows) == 4 * 3
    by_index = {w.index: w for w in windows}
    assert [w.index for w in neighbours(by_index[4], by_index, 3)] == list(range(9))
    thumb = np.full((100, 70, 3), 245, np.uint8)
    thumb[:30, :30] = (120, 90, 200)  # stained: the top-left windows only
    kept = plan_windows((1000, 700), 256, 40, tissue_mask(thumb), thumb_step=10)
    assert [w.index for w in kept] == [0, 1, 3, 4]


class Pyramid:
    shapes = [(8000, 8000), (4000, 4000), (2000, 2000)]


@pytest.mark.parametrize("scale0, exact, level, scale", [
    (1.0, False, 0, 1.0), (0.5, False, 1, 1.0), (0.3, False, 2, 1.0), (0.1, False, 2, 0.4),
    (0.45, True, 1, 0.9), (2.0, False, 0, 2.0)])
def test_the_level_read_is_the_one_nearest_the_models_scale(scale0, exact, level, scale):
    assert choose_level(Pyramid(), scale0, exact) == pytest.approx((level, scale))


def test_tiled_tiffs_are_slides_and_carry_their_pixel_size(slide_folder, tmp_path):
    root, _ = slide_folder
    slide = open_slide(root / "in" / "smear.tif")
    assert is_slide(root / "in" / "smear.tif") and slide.pixel_size_um == pytest.approx(0.5)
    assert slide.shapes == [(SIDE * PITCH,) * 2, (SIDE * PITCH // 2,) * 2]
    plain, small_tiled = tmp_path / "plain.tif", tmp_path / "camera.tif"
    cv2.imwrite(str(plain), np.zeros((50, 60, 3), np.uint8))
    tifffile.imwrite(small_tiled, np.zeros((512, 512, 3), np.uint8), tile=(256, 256))
    assert not is_slide(plain) and not is_slide(small_tiled)  # images, with images' outputs


def test_an_image_too_large_to_read_whole_says_what_to_do(tmp_path):
    ok, encoded = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    at = data.find(b"\xff\xc0")  # the frame header: height and width, 16 bits each
    data[at + 5:at + 9] = (60000).to_bytes(2, "big") * 2
    (tmp_path / "huge.jpg").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"huge.jpg: 60000 x 60000 px.*tiled, pyramidal TIFF"):
        read_rgb(tmp_path / "huge.jpg")


def test_a_bad_scheduler_address_is_refused(slide_folder, tmp_path):
    root, config = slide_folder
    proc = infer(config, root / "in", tmp_path / "out", "--scheduler", "host:8786", check=False)
    assert proc.returncode != 0
    assert "--scheduler host:8786: allowed: a Dask scheduler address" in proc.stdout + proc.stderr


def test_a_scanners_file_is_read_in_windows_by_openslide(tmp_path):
    rgb = np.full((1024, 768, 3), (240, 240, 245), np.uint8)
    rgb[100:300, 200:400] = (120, 90, 200)
    tifffile.imwrite(tmp_path / "scan.svs", rgb, tile=(256, 256), photometric="rgb",
                     compression="jpeg")
    slide = open_slide(tmp_path / "scan.svs")
    assert slide.reader == "openslide" and slide.shapes == [(1024, 768)]
    window = slide.read(0, 150, 250, 20, 30)
    assert window.shape == (20, 30, 3)
    assert np.abs(window.astype(int) - (120, 90, 200)).max() <= 6  # JPEG's rounding
    assert slide.pixel_size_um is None  # no MPP recorded
