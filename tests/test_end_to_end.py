"""generate -> split -> train -> evaluate -> infer, each as the user runs it, on a tiny config."""
import csv
import json

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_script, tiny_config_text


def tensorboard_tags(log_dir):
    import tensorflow as tf
    tags = set()
    for events in log_dir.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_whole_pipeline_writes_every_output(tmp_path):
    run_script("make_synthetic_master.py", "--out", tmp_path / "master", "--per-category", 12)
    run_script("split_master.py", "--master", tmp_path / "master", "--dest", tmp_path / "ALL",
               "--mini-test", tmp_path / "mini_test")
    config = tmp_path / "tiny.config"
    config.write_text(tiny_config_text(tmp_path, epochs="3", patience="5"))

    # an earlier best model belongs to the user: training must keep it
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "best_model.keras").write_bytes(b"an earlier model")
    proc = run_script("TensorflowUNetALLTrainer.py", config)
    assert "Device: CPU" in proc.stdout or "Device: GPU" in proc.stdout
    assert "10 pairs" in proc.stdout and "8 train, 2 validation" in proc.stdout
    kept = [p for p in (tmp_path / "models").iterdir() if p.name.startswith("best_model.2")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"an earlier model"
    assert (tmp_path / "models" / "best_model.keras").stat().st_size > 10_000
    with open(tmp_path / "eval" / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    for column in ("loss", "val_loss", "binary_accuracy", "dice", "iou", "val_dice", "val_iou"):
        assert all(0 <= float(r[column]) < 10 for r in rows), column
    for plot in ("train_losses.png", "train_metrics.png"):
        assert cv2.imread(str(tmp_path / "eval" / plot)) is not None
    tags = tensorboard_tags(tmp_path / "eval" / "tensorboard")
    assert {"epoch_loss", "epoch_dice", "image | truth | prediction"} <= tags, tags

    proc = run_script("TensorflowUNetALLEvaluator.py", config)
    assert "Test loss:" in proc.stdout and "Test binary accuracy:" in proc.stdout
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    for key in ("mean_dice", "mean_iou", "pooled_dice", "pooled_iou", "pixel_accuracy",
                "precision", "recall", "loss"):
        assert 0 <= summary[key] <= 10, key
    assert len(summary["per_image"]) == 2
    assert set(summary["per_image"][0]) >= {"file", "dice", "iou", "tp", "fp", "fn"}
    cells = summary["cells"]
    for key in ("precision", "recall", "f1", "panoptic_quality", "dice", "nsd_2px"):
        assert 0 <= cells[key] <= 1, key
    assert cells["count_mae"] >= abs(cells["count_bias"])
    assert cells["tp"] + cells["fn"] == cells["n_true"] == sum(r["cells"]["n_true"]
                                                               for r in summary["per_image"])
    assert set(cells["per_category"]) == {"Early"}
    assert "Cells (regions >= 50 px" in proc.stdout
    for picture in ("eval_histograms.png", "eval_worst_cells.png"):
        assert cv2.imread(str(tmp_path / "eval" / picture)) is not None, picture
    # each image was scored at its own 224x224 size
    row = summary["per_image"][0]
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 224 * 224

    mini = tmp_path / "mini_test"
    (mini / "readme.txt").write_text("not an image")
    (mini / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    big = np.full((300, 410, 3), 230, np.uint8)
    cv2.imwrite(str(mini / "odd size.png"), big)
    proc = run_script("TensorflowUNetALLInfer.py", config)
    assert "skipped" in proc.stdout and "readme.txt" in proc.stdout
    assert "broken.jpg" in proc.stdout + proc.stderr
    originals = [p for p in mini.iterdir() if p.suffix in (".jpg", ".png") and p.name != "broken.jpg"]
    assert len(originals) == 3
    for original in originals:
        mask = cv2.imread(str(tmp_path / "mini_test_output" / f"{original.stem}.png"),
                          cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(original))
        assert mask.shape == image.shape[:2]  # at the image's own size
        assert set(np.unique(mask)) <= {0, 255}
        assert (tmp_path / "mini_test_overlay" / f"{original.stem}.png").exists()
    assert not (tmp_path / "mini_test_output" / "broken.png").exists()
    assert cv2.imread(str(tmp_path / "montage.png")) is not None
    with open(tmp_path / "cell_counts.csv", newline="") as handle:
        counts = list(csv.DictReader(handle))
    assert sorted(r["file"] for r in counts) == sorted(p.name for p in originals)
    for r in counts:
        mask = cv2.imread(str(tmp_path / "mini_test_output" / f"{Path(r['file']).stem}.png"), 0)
        assert float(r["foreground_fraction"]) == pytest.approx((mask > 0).mean(), abs=1e-5)
        assert int(r["cells"]) == len(r["cell_areas_px"].split())
        # the 16-bit label image numbers the same cells, and the cells CSV has a row for each
        labels = cv2.imread(str(tmp_path / "mini_test_output_labels" / f"{Path(r['file']).stem}.png"),
                            cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint16 and labels.shape == mask.shape
        assert labels.max() == int(r["cells"])
        assert not (labels > 0)[mask == 0].any()  # cells lie inside the mask
        assert (labels > 0).sum() == sum(int(a) for a in r["cell_areas_px"].split())
    with open(tmp_path / "mini_test_output_cells.csv", newline="") as handle:
        cells = list(csv.DictReader(handle))
    assert len(cells) == sum(int(r["cells"]) for r in counts)
    areas = {r["file"]: sorted((int(c["area_px"]) for c in cells if c["file"] == r["file"]), reverse=True)
             for r in counts}
    for r in counts:
        assert areas[r["file"]] == [int(a) for a in r["cell_areas_px"].split()]


def test_scripts_explain_bad_input_without_a_traceback(tmp_path):
    config = tmp_path / "tiny.config"
    config.write_text(tiny_config_text(tmp_path))
    for script in ("TensorflowUNetALLEvaluator.py", "TensorflowUNetALLInfer.py"):
        proc = run_script(script, config, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_script("TensorflowUNetALLEvaluator.py", config, check=False)
    assert "no trained model at" in proc.stderr
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "image folder not found" in proc.stderr
    proc = run_script("TensorflowUNetALLTrainer.py", tmp_path / "missing.config", check=False)
    assert proc.returncode == 2 and "config file not found" in proc.stderr
    help_text = run_script("TensorflowUNetALLTrainer.py", "--help").stdout
    assert "config file (default: ./train_eval_infer.config)" in help_text
