"""export_model.py: the SavedModel, TFLite and OpenVINO files give the Keras model's masks."""
import numpy as np

from conftest import run_script


def test_exports_follow_the_keras_model(trained):
    root, config = trained
    proc = run_script("export_model.py", config)
    export = root / "models" / "export"
    for name in ("saved_model/saved_model.pb", "model_float32.tflite", "model_float16.tflite",
                 "openvino/model.xml", "openvino/model.bin"):
        assert (export / name).stat().st_size > 1000, name
    lines = [line for line in proc.stdout.splitlines() if "mask Dice against the Keras model" in line]
    assert len(lines) == 4
    assert all(float(line.rsplit(":", 1)[1]) >= 0.99 for line in lines), lines

    # the same check here, on probabilities too, so an all-empty mask cannot pass unnoticed
    from allseg.core.config import load_config
    from allseg.infer.export import openvino_predict, saved_model_predict, tflite_predict
    from allseg.evaluate.export_check import sample_images
    from allseg.model.unet import load_trained_model
    cfg = load_config(config)
    images = sample_images(cfg)
    want = load_trained_model(cfg).predict_on_batch(images.astype(np.float32))[..., 0]
    assert want.std() > 1e-3  # the model's output varies over the images
    assert np.abs(saved_model_predict(export / "saved_model", images) - want).max() < 1e-4
    assert np.abs(tflite_predict(export / "model_float32.tflite", images) - want).max() < 1e-3
    assert np.abs(tflite_predict(export / "model_float16.tflite", images) - want).max() < 2e-2
    assert np.abs(openvino_predict(export / "openvino" / "model.xml", images) - want).max() < 1e-4

    run_script("export_model.py", config)  # again: the first export is kept, not replaced
    assert len(list((root / "models").glob("export.previous-*"))) == 1


def test_the_inference_copy_records_the_cell_size_its_model_learned(trained, tmp_path):
    from conftest import run_script

    from allseg.cells.instances import cell_settings, median_cell_diameter
    from allseg.core.config import load_config
    from allseg.data.dataset import ALLDataset
    from allseg.data.images import read_mask, resize_mask

    _, trained_config = trained
    config = tmp_path / "tiny.config"  # cells of 32x32 smears are small: count from 3 px
    config.write_text(trained_config.read_text(encoding="utf-8").replace(
        "[infer]\n", "[infer]\ncell_min_area = 3\n"), encoding="utf-8")
    copy = tmp_path / "copy" / "tiny.keras"
    proc = run_script("export_model.py", config, "--inference-copy", copy)
    assert f"Wrote {copy}" in proc.stdout
    own = load_config(copy.with_suffix(".config"))
    cfg = load_config(config)
    m = cfg.model
    masks = [resize_mask(read_mask(p.mask), m.image_height, m.image_width)
             for p in ALLDataset.from_config(cfg, "train").pairs]
    expected = median_cell_diameter(masks, *cell_settings(cfg.infer))
    assert expected > 0 and own.model.cell_diameter_px == round(expected, 1)
    assert "training masks, measured by export_model.py" in copy.with_suffix(".config").read_text(
        encoding="utf-8")
