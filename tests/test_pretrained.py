"""The shipped model (pretrained/): it is the file its card describes, it reloads in safe mode,
it finds the synthetic generator's cells, it gives the committed masks through every engine, and
one command segments a folder with it on a fresh clone."""
import hashlib
import re
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT, run_script

import allseg.model.losses_metrics  # noqa: F401  (registers the loss and metrics)
from allseg.cells.instances import cell_settings, label_cells
from allseg.core.config import load_config
from allseg.data.synthetic import CATEGORIES, make_smear
from allseg.cells.scoring import score_cells, summarize_cells
from allseg.infer.predict import predict_masks
from allseg.model.shipped import SHIPPED_MODEL

CARD = ROOT / "pretrained" / "README.md"
SMEARS = ROOT / "tests" / "data" / "smears"
EXPECTED = ROOT / "tests" / "data" / "smears_expected"


@pytest.fixture(scope="module")
def shipped():
    import keras

    model = keras.models.load_model(SHIPPED_MODEL, safe_mode=True)
    return model, load_config(SHIPPED_MODEL.with_suffix(".config"))


def test_the_shipped_model_is_the_file_its_card_describes():
    card = CARD.read_text(encoding="utf-8")
    stated = re.search(r"SHA-256[^`]*`([0-9a-f]{64})`", card)
    assert stated, f"{CARD} gives no SHA-256"
    assert hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest() == stated.group(1)
    assert SHIPPED_MODEL.stat().st_size <= 5 * 2**20


def test_the_shipped_model_reloads_and_finds_the_generators_cells(shipped):
    model, cfg = shipped
    assert tuple(model.input_shape[1:]) == (cfg.model.image_height, cfg.model.image_width, 3)
    smears = [make_smear(np.random.default_rng([7, i]), CATEGORIES[i % 4]) for i in range(8)]
    preds = predict_masks(model, [original for original, _, _ in smears], cfg.model, 8)
    rows = [score_cells(pred, truth, *cell_settings(cfg.infer))[0]
            for pred, (_, _, truth) in zip(preds, smears)]
    cells = summarize_cells(rows, *cell_settings(cfg.infer))
    # The generator's smears are not real ones: it outlines some of their red cells too, so
    # recall, not precision, is the fair check (measured: see pretrained/README.md).
    assert cells["n_true"] >= 40 and cells["recall"] >= 0.90, cells


@pytest.mark.parametrize("engine", ["keras", "openvino", "litert"])
def test_one_command_segments_a_folder_with_the_shipped_model_on_every_engine(tmp_path, engine):
    images = tmp_path / "my smears"
    shutil.copytree(SMEARS, images)
    config = tmp_path / "engine.config"
    config.write_text((ROOT / "train_eval_infer.config").read_text(encoding="utf-8")
                      + f'engine = "{engine}"\n', encoding="utf-8")
    out = tmp_path / "out"
    proc = run_script("TensorflowUNetALLInfer.py", config, "--model", "pretrained",
                      "--images", images, "--output", out)
    assert f"Model: {SHIPPED_MODEL}" in proc.stdout and f"Inference engine: {engine}" in proc.stdout
    for expected in sorted(EXPECTED.glob("*.png")):
        mask = cv2.imread(str(out / "masks" / expected.name), cv2.IMREAD_UNCHANGED)
        truth = cv2.imread(str(expected), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == truth.shape, expected.name
        assert np.mean(mask == truth) >= 0.995, (engine, expected.name, np.mean(mask == truth))
    assert len(list(EXPECTED.glob("*.png"))) == 3
    for name in ("labels", "overlays"):
        assert len(list((out / name).glob("*.png"))) == 3, name
    for name in ("montage.png", "cell_counts.csv", "cells.csv"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob("out_*")), "an output went outside --output"


def test_the_shipped_model_runs_from_any_folder_with_no_config(tmp_path):
    shutil.copytree(SMEARS, tmp_path / "smears")
    proc = run_script("TensorflowUNetALLInfer.py", "--model", "pretrained", "--images", "smears",
                      "--output", "out", cwd=tmp_path)
    assert "Wrote 3 masks" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "smears"]


def test_bad_command_line_values_get_one_line_and_exit_code_2(tmp_path):
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a model")
    cases = [
        (["--model", "pretrained", "--images", tmp_path / "missing", "--output", tmp_path / "o"],
         f"--images {tmp_path / 'missing'}: folder not found"),
        (["--model", not_a_model, "--images", SMEARS, "--output", tmp_path / "o"],
         "cannot be loaded as a Keras model"),
        (["--model", tmp_path / "nothing", "--images", SMEARS, "--output", tmp_path / "o"],
         f"--model {tmp_path / 'nothing'}: no model file"),
        (["--model", "pretrained", "--images", SMEARS, "--output", not_a_model],
         "is a file, not a folder"),
        (["--model", "pretrained", "--images", SMEARS, "--output", tmp_path / "o",
          "--pixel-size-um", "-0.3"], "--pixel-size-um -0.3: allowed: a number in [0.0, 1000.0]"),
        (["--model", "pretrained", "--images", SMEARS, "--output", tmp_path / "o",
          "--pixel-size-um", "0"], "--pixel-size-um 0: allowed: a number in (0.0, 1000.0]"),
        (["--model", "pretrained", "--images", SMEARS, "--output", tmp_path / "o",
          "--pixel-size-um", "nan"], "--pixel-size-um nan: allowed: a number in [0.0, 1000.0]"),
    ]
    for args, message in cases:
        proc = run_script("TensorflowUNetALLInfer.py", *args, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last, proc.stderr
    assert not (tmp_path / "o").exists()


def test_on_a_read_only_checkout_the_engines_cache_goes_to_the_users_cache(tmp_path, monkeypatch):
    """A shared install: the model's folder is on a read-only disk (a tmpfs mounted read-only,
    where the test may mount one), so the conversion is made and kept in $XDG_CACHE_HOME."""
    import subprocess

    disk = tmp_path / "install"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        for name in ("leukemia_all.keras", "leukemia_all.config"):
            shutil.copy(ROOT / "pretrained" / name, disk / name)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        config = tmp_path / "ov.config"
        config.write_text((ROOT / "train_eval_infer.config").read_text(encoding="utf-8")
                          + 'engine = "openvino"\n', encoding="utf-8")
        cache = tmp_path / "cache"
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        for _ in range(2):  # made on the first run, found on the second
            proc = run_script("TensorflowUNetALLInfer.py", config, "--model",
                              disk / "leukemia_all.keras", "--images", SMEARS, "--output",
                              tmp_path / "out")
        assert "Converted" not in proc.stdout and "Inference engine: openvino" in proc.stdout
        (made,) = (cache / "allseg").glob("leukemia_all-*.openvino")
        assert (made / "model.xml").is_file() and sorted(p.name for p in disk.iterdir()) == [
            "leukemia_all.config", "leukemia_all.keras"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_the_evaluator_scores_the_shipped_model_on_a_configs_test_pairs(tmp_path, trained):
    import json

    from conftest import tiny_config_text

    root, _ = trained  # a config for 32x32 models: the shipped model's own [model] replaces it
    config = tmp_path / "eval.config"
    config.write_text(tiny_config_text(root).replace(f'"{root.as_posix()}/eval"',
                                                     f'"{(tmp_path / "eval").as_posix()}"'),
                      encoding="utf-8")
    proc = run_script("TensorflowUNetALLEvaluator.py", config, "--model", "pretrained")
    assert f"Model: {SHIPPED_MODEL}" in proc.stdout and "224x224 input" in proc.stdout
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"] == str(SHIPPED_MODEL) and summary["cells"]["n_true"] > 0
    # Told its images' cells are twice the size it learned, it halves them before predicting
    # and counts cells of at least 4x the area in the images' own pixels.
    learned = load_config(SHIPPED_MODEL.with_suffix(".config")).model.cell_diameter_px
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[infer]\n", f"[infer]\ncell_diameter = {2 * learned}\n"), encoding="utf-8")
    proc = run_script("TensorflowUNetALLEvaluator.py", config, "--model", "pretrained")
    assert "Resampling each image by 0.5" in proc.stdout, proc.stdout[-2000:]
    halved = json.loads((tmp_path / "eval" / "summary.json").read_text(encoding="utf-8"))
    assert halved["cells"]["definition"]["min_area_px"] == 4 * summary["cells"]["definition"]["min_area_px"]
    assert len(halved["per_image"]) == len(summary["per_image"])


def test_cell_diameter_brings_a_3x_magnified_smear_back_to_the_cells_the_model_learned(shipped):
    from allseg.infer.scale import resampling

    model, cfg = shipped
    assert cfg.model.cell_diameter_px > 0  # the shipped config records what it learned
    original, _, _ = make_smear(np.random.default_rng([3, 1]), "Early")
    big = cv2.resize(original, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    (at_224,) = predict_masks(model, [original], cfg.model, 8)
    (as_given,) = predict_masks(model, [big], cfg.model, 8, tiled=True)
    cfg.infer.cell_diameter = 3 * cfg.model.cell_diameter_px
    scale, _ = resampling(cfg)
    assert scale == pytest.approx(1 / 3)
    (rescaled,) = predict_masks(model, [big], cfg.model, 8, scale=scale)
    assert rescaled.shape == big.shape[:2]
    back = cv2.resize(at_224.astype(np.uint8), big.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    agree = np.mean(rescaled == back.astype(bool))
    cells = label_cells(rescaled, *cell_settings(cfg.infer, scale)).max()
    native = label_cells(as_given, *cell_settings(cfg.infer)).max()
    expected = label_cells(at_224, *cell_settings(cfg.infer)).max()
    assert agree >= 0.97 and abs(int(cells) - int(expected)) <= 1, (agree, cells, expected, native)


def test_cell_diameter_without_the_models_learned_size_is_refused(shipped):
    from allseg.core.errors import UserError
    from allseg.infer.scale import resampling

    cfg = load_config(SHIPPED_MODEL.with_suffix(".config"))
    cfg.model.cell_diameter_px, cfg.infer.cell_diameter = 0.0, 60.0
    with pytest.raises(UserError, match=r"\[infer\] cell_diameter = 60 needs .*cell_diameter_px"):
        resampling(cfg)
    cfg.infer.cell_diameter = 0.0
    assert resampling(cfg) == (1.0, "")
    # "auto", the default, cannot read a scale either: the images go as given, and it says why
    cfg.infer.cell_diameter = "auto"
    factor, note = resampling(cfg, shipped[0], sorted(SMEARS.glob("*.jpg")))
    assert factor == 1.0 and "as given" in note and "cell_diameter_px" in note


def test_auto_scale_leaves_smears_at_the_learned_scale_alone(shipped):
    from allseg.infer.scale import estimate_scale, resampling

    model, cfg = shipped[0], load_config(SHIPPED_MODEL.with_suffix(".config"))
    assert cfg.infer.cell_diameter == "auto"  # the default
    files = sorted(SMEARS.glob("*.jpg"))
    factor, note = resampling(cfg, model, files)
    assert factor == 1.0 and "from 3 of 3 images" in note and "images as given" in note, note
    found = estimate_scale(model, [cv2.imread(str(p))[..., ::-1] for p in files], cfg)
    assert 1 / 1.5 <= found <= 1.5


def test_auto_scale_reads_the_magnification_of_a_folder_of_magnified_smears(shipped, tmp_path):
    """Synthetic smears enlarged 4x: the model is run on them over a ladder of scales, and the
    one at which its cells have their learned size is about 1/4; segmented at it, they give
    the cells of the smears at their own size."""
    from allseg.infer.scale import resampling

    model, cfg = shipped[0], load_config(SHIPPED_MODEL.with_suffix(".config"))
    smears = [make_smear(np.random.default_rng([5, i]), ("Early", "Pre")[i % 2])
              for i in range(4)]
    paths, big = [], []
    for i, (original, _, _) in enumerate(smears):
        big.append(cv2.resize(original, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC))
        paths.append(tmp_path / f"smear{i}.png")
        cv2.imwrite(str(paths[-1]), big[-1][..., ::-1])
    broken = tmp_path / "smear9.png"  # the run names an unreadable image; the scale skips it
    broken.write_bytes(b"not an image")
    factor, note = resampling(cfg, model, [*paths, broken])
    assert 0.25 / 1.25 <= factor <= 0.25 * 1.25, note
    assert "from 4 of 5 images" in note and f"resampling each image by {factor:.3g}" in note
    masks = predict_masks(model, big, cfg.model, 8, scale=factor)
    at_224 = predict_masks(model, [original for original, _, _ in smears], cfg.model, 8)
    cells = [label_cells(mk, *cell_settings(cfg.infer, factor)).max() for mk in masks]
    expected = [label_cells(mk, *cell_settings(cfg.infer)).max() for mk in at_224]
    assert sum(abs(int(a) - int(b)) for a, b in zip(cells, expected)) <= 2, (cells, expected)


def test_the_scale_ladder_starts_where_cells_can_be_sized_and_never_makes_a_huge_image():
    from allseg.infer.scale import LARGEST_SIDE, SMALLEST_SIDE, ladder

    small = ladder([np.zeros((224, 300, 3), np.uint8)])
    assert small[-1] == pytest.approx(2.0) and small == sorted(small)
    assert 224 * small[0] >= SMALLEST_SIDE > 224 * small[0] / 2 ** 0.5
    scan = ladder([np.zeros((3000, 4000, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)])
    assert 4000 * scan[-1] <= max(4000, LARGEST_SIDE) and scan[-1] == pytest.approx(1.0)
    assert 480 * scan[0] >= SMALLEST_SIDE



def test_the_scale_sample_is_spread_over_the_folder_and_bounded_in_pixels(tmp_path):
    from allseg.infer.scale import readable, spread_first

    order = spread_first(list(range(16)))
    assert sorted(order) == list(range(16)) and order[:4] == [0, 8, 4, 12]
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"field{i}.png")
        cv2.imwrite(str(paths[-1]), np.full((100, 100, 3), 40 * i, np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    assert len(readable([broken, *paths], max_pixels=25_000)) == 3  # stops once it holds 25,000
    assert len(readable([broken], max_pixels=25_000)) == 0


def test_a_large_image_at_the_learned_scale_gives_its_tiles_cells_and_flags_the_border(tmp_path):
    """A 3 x 3 mosaic of a smear whose cells lie inside it: segmented at its own resolution by
    default (not shrunk to the model's input), it holds the smear's cells nine times, one each,
    and a cell cut by the image's edge is kept and flagged."""
    single, mosaic = tmp_path / "single", tmp_path / "mosaic"
    single.mkdir()
    mosaic.mkdir()
    smear = cv2.imread(str(SMEARS / "synthetic_early.jpg"))
    cv2.imwrite(str(single / "smear.png"), smear)
    cv2.imwrite(str(mosaic / "mosaic.png"), np.tile(smear, (3, 3, 1)))
    cv2.imwrite(str(mosaic / "shifted.png"), np.roll(np.tile(smear, (3, 3, 1)), 112, axis=1))
    for folder in (single, mosaic):
        proc = run_script("TensorflowUNetALLInfer.py", "--model", "pretrained", "--images",
                          folder, "--output", tmp_path / f"{folder.name}_out")
    assert "images as given" in proc.stdout, proc.stdout
    counts = {row.split(",")[0]: int(row.split(",")[1]) for row in
              (tmp_path / "mosaic_out" / "cell_counts.csv").read_text().splitlines()[1:]}
    (one,) = (tmp_path / "single_out" / "cell_counts.csv").read_text().splitlines()[1:]
    per_tile = int(one.split(",")[1])
    assert per_tile >= 4
    assert abs(counts["mosaic.png"] - 9 * per_tile) <= 0.05 * 9 * per_tile, (counts, per_tile)
    labels = cv2.imread(str(tmp_path / "mosaic_out" / "labels" / "mosaic.png"), -1)
    assert labels.shape == (3 * 224, 3 * 224)
    rows = (tmp_path / "mosaic_out" / "cells.csv").read_text().splitlines()
    header = rows[0].split(",")
    flags = [row.split(",")[header.index("touches_border")] for row in rows[1:]
             if row.startswith("shifted.png")]
    assert "True" in flags and "False" in flags  # the roll cuts cells at the left and right edge


def test_tiled_false_keeps_the_seeds_resize_and_auto_tiles_only_larger_images():
    from types import SimpleNamespace

    from allseg.infer.predict import needs_tiles

    m = SimpleNamespace(image_height=224, image_width=224)
    small, wide = np.zeros((224, 224, 3), np.uint8), np.zeros((224, 300, 3), np.uint8)
    assert not needs_tiles(small, m) and needs_tiles(wide, m)  # "auto", the default
    assert not needs_tiles(wide, m, tiled=False) and needs_tiles(small, m, tiled=True)
    assert needs_tiles(small, m, tiled=False, scale=0.5)  # resampled images are always tiled


def test_the_scale_of_a_slide_scan_is_read_from_a_few_windows_not_the_whole_scan():
    from allseg.infer.scale import WINDOW_SIDE, sample_windows

    scan = np.zeros((3000, 4000, 3), np.uint8)
    windows = sample_windows(scan)
    assert len(windows) == 4 and all(w.shape == (WINDOW_SIDE, WINDOW_SIDE, 3) for w in windows)
    assert all(np.shares_memory(w, scan) for w in windows)  # views: no copy of the scan
    strip = np.zeros((600, 5000, 3), np.uint8)
    assert [w.shape[:2] for w in sample_windows(strip)] == [(600, WINDOW_SIDE)] * 2
    crop = np.zeros((300, 300, 3), np.uint8)
    assert sample_windows(crop)[0] is crop
