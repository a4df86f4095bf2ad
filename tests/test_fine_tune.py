"""Fine-tuning on a lab's own outlines: one command from images and three-level masks to a model
that the infer script runs, kept only if it beats where it started, and clear errors for what
cannot be trained on."""
import configparser
import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from skimage import measure

from conftest import ROOT, run_script, script_process_options

from allseg.data.geojson import cells_to_geojson
from allseg.data.synthetic import make_smear


def write_lab(folder, count, seed=0):
    """Synthetic smears with three-level masks: the generator's cells, their nuclei the cells
    shrunk by 3 px (128 cytoplasm, 255 nucleus)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(count):
        rgb, _, cells = make_smear(np.random.default_rng([seed, i]), ("Early", "Pre")[i % 2])
        nuclei = cv2.erode(cells.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        cv2.imwrite(str(folder / "images" / f"smear{i:02d}.png"), rgb[..., ::-1])
        cv2.imwrite(str(folder / "masks" / f"smear{i:02d}.png"),
                    np.where(nuclei, 255, np.where(cells, 128, 0)).astype(np.uint8))
    return folder / "images", folder / "masks"


def model_config(folder):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(folder / "best_model.config", encoding="utf-8")
    return parser


def test_from_scratch_the_model_learns_cells_and_nuclei_and_the_infer_script_runs_it(tmp_path):
    images, masks = write_lab(tmp_path / "lab", 5)
    proc = run_script("TensorflowUNetALLTrainer.py", "--images", images, "--masks", masks,
                      "--output", tmp_path / "model", "--model", "none", "--epochs", "1",
                      "--pixel-size-um", "0.25", "--cell-diameter", "35")
    out = proc.stdout
    assert "Read 5 images with 5 masks (three-level 0/128/255: cell and nucleus)" in out, out
    assert "4 images to train on, 1 held out" in out and "Kept the fine-tuned model" in out, out
    model = tmp_path / "model"
    config = model_config(model)
    assert config["model"]["num_classes"] == "2" and config["infer"]["pixel_size_um"] == "0.25"
    # the size given, not the masks' median, is the one the lab's images are segmented at
    assert "35 px across (as --cell-diameter gives)" in out and "resized by 1 " in out, out
    assert float(config["infer"]["cell_diameter"]) == 35
    assert config["model"]["tta_flips"] == "True"  # the lab's model predicts with flips averaged
    card = (model / "README.md").read_text(encoding="utf-8")
    assert "none (from scratch)" in card and "whole cell and nucleus" in card
    scores = json.loads((model / "held_out_scores.json").read_text(encoding="utf-8"))
    held = scores["held_out_images"]
    per_image = scores["fine_tuned_scores"]["per_image"]
    assert [r["image"] for r in per_image] == held and len(held) == 1
    assert per_image[0]["whole_cell_dice"] == scores["fine_tuned_scores"]["whole_cell_dice"]

    run_script("TensorflowUNetALLInfer.py", "--model", model, "--images", images, "--output",
               tmp_path / "seg")
    mask = cv2.imread(str(tmp_path / "seg" / "masks" / "smear00.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (224, 224)
    header = (tmp_path / "seg" / "cells.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "area_um2" in header  # the pixel size travelled with the model


def test_from_the_shipped_model_the_better_of_the_two_is_kept_and_the_scores_printed(tmp_path):
    images, masks = write_lab(tmp_path / "lab", 4, seed=1)
    proc = run_script("TensorflowUNetALLTrainer.py", "--images", images, "--masks", masks,
                      "--output", tmp_path / "model", "--epochs", "1")
    out = proc.stdout
    for row in ("whole_cell_dice", "found", "count_error", "nucleus_dice"):
        assert row in out, out
    kept_tuned = "Kept the fine-tuned model" in out
    assert kept_tuned != ("Kept the START model" in out), out
    # the file written is the model the verdict names: the start has one output, the fine-tuned two
    assert model_config(tmp_path / "model")["model"]["num_classes"] == ("2" if kept_tuned else "1")


def test_qupath_geojson_outlines_train_as_the_png_masks_do(tmp_path):
    """The GeoJSON the infer script writes (and QuPath exports) is read back as masks."""
    images, masks = write_lab(tmp_path / "lab", 3, seed=2)
    outlines = tmp_path / "lab" / "geojson"
    outlines.mkdir()
    for png in sorted(masks.glob("*.png")):
        values = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        labels = measure.label(values > 0, connectivity=2)
        (outlines / f"{png.stem}.geojson").write_text(
            json.dumps(cells_to_geojson(labels, png.stem, nucleus=values == 255)))
    proc = run_script("TensorflowUNetALLTrainer.py", "--images", images, "--masks", outlines,
                      "--output", tmp_path / "model", "--model", "none", "--epochs", "1")
    assert "Read 3 images with 3 masks (QuPath GeoJSON: cell and nucleus)" in proc.stdout
    assert model_config(tmp_path / "model")["model"]["num_classes"] == "2"


@pytest.mark.parametrize("args, message", [
    (["--masks", "M", "--output", "O"], "--images not given"),
    (["--images", "I", "--masks", "M", "--output", "O", "--epochs", "0"],
     "--epochs 0: allowed: a number above 0"),
    (["--images", "I", "--masks", "M", "--output", "O", "--cell-diameter", "-40"],
     "--cell-diameter -40: allowed: a number above 0"),
    (["--images", "I", "--masks", "M", "--output", "O", "--model", "nowhere.keras"],
     "--model nowhere.keras: no model file"),
])
def test_bad_fine_tuning_arguments_get_one_line(tmp_path, args, message):
    images, masks = write_lab(tmp_path / "lab", 2)
    given = {"I": images, "M": masks, "O": tmp_path / "out"}
    proc = run_script("TensorflowUNetALLTrainer.py", *[given.get(a, a) for a in args],
                      check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "best_model.keras").exists()


def test_one_image_is_not_enough_to_fine_tune_and_nothing_is_written(tmp_path):
    images, masks = write_lab(tmp_path / "lab", 1)
    proc = run_script("TensorflowUNetALLTrainer.py", "--images", images, "--masks", masks,
                      "--output", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "fine-tuning needs at least 2" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def write_cellpose_lab(folder, count):
    """Synthetic smears with Cellpose's 16-bit <stem>_masks.png beside them, in one folder."""
    folder.mkdir(parents=True)
    for i in range(count):
        rgb, _, cells = make_smear(np.random.default_rng([7, i]), "Early")
        cv2.imwrite(str(folder / f"cell{i:02d}.png"), rgb[..., ::-1])
        cv2.imwrite(str(folder / f"cell{i:02d}_masks.png"),
                    measure.label(cells, connectivity=2).astype(np.uint16))
    return folder


def test_masks_with_no_cell_are_refused_and_nothing_is_written(tmp_path):
    images, masks = write_lab(tmp_path / "lab", 3)
    for mask in masks.iterdir():
        cv2.imwrite(str(mask), np.zeros((224, 224), np.uint8))
    proc = run_script("TensorflowUNetALLTrainer.py", "--images", images, "--masks", masks,
                      "--output", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "none of the 3 masks holds a cell" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_cellpose_folder_fine_tunes_without_masks_and_a_second_run_keeps_the_first(tmp_path):
    folder = write_cellpose_lab(tmp_path / "lab", 3)
    args = ("TensorflowUNetALLTrainer.py", "--images", folder, "--output", tmp_path / "model",
            "--model", "none", "--epochs", "1")
    first = run_script(*args).stdout
    assert "Read 3 images with 3 masks (Cellpose masks" in first, first
    card = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")

    second = run_script(*args).stdout
    (earlier,) = (tmp_path / "model").glob("earlier-*")
    assert f"Kept the earlier model of {tmp_path / 'model'} in {earlier}" in second, second
    assert (earlier / "README.md").read_text(encoding="utf-8") == card
    assert {p.name for p in earlier.iterdir()} == {"best_model.keras", "best_model.config",
                                                    "README.md", "held_out_scores.json"}
    assert (tmp_path / "model" / "best_model.keras").is_file()


def test_a_killed_fine_tune_goes_on_where_it_stopped_when_run_again(tmp_path):
    images, masks = write_lab(tmp_path / "lab", 3)
    args = [str(ROOT / "TensorflowUNetALLTrainer.py"), "--images", str(images), "--masks",
            str(masks), "--output", str(tmp_path / "model"), "--model", "none", "--epochs", "3"]
    state = tmp_path / "model" / "training" / "unfinished_run" / "state.json"
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **script_process_options())
    while not state.exists() and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the run ended before an epoch was saved"

    out = run_script("TensorflowUNetALLTrainer.py", *args[1:]).stdout
    assert "Resuming the unfinished run" in out and "of 3 epochs done" in out, out
    assert "Kept the earlier model" not in out  # the killed run had written no model
    assert (tmp_path / "model" / "README.md").is_file() and not state.exists()
