import subprocess
import sys

import numpy as np
import pytest

from allseg.core.errors import ConfigError
from allseg.model.losses_metrics import BceDice, Dice, IoU, make_loss
from allseg.model.unet import TensorflowUNet
from conftest import ROOT, run_script, tiny_config_text


def test_seed_config_builds_the_seed_graph_with_31110001_parameters():
    proc = run_script("TensorflowUNet.py")
    assert "Total params: 31,110,001" in proc.stdout
    # six poolings of 256 leave a 4x4 bottleneck of 1024 filters
    assert "(None, 4, 4, 1024)" in proc.stdout


def test_model_levels_follow_base_filters_and_num_layers(tmp_path):
    path = tmp_path / "c.config"
    path.write_text(tiny_config_text(tmp_path, base_filters="4", num_layers="2"))
    model = TensorflowUNet(path).model
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 32, 32, 1)
    assert model.get_layer("mask").activation.__name__ == "sigmoid"
    # bottleneck: 32 / 2**2 = 8 pixels wide, 4 * 2**2 = 16 filters
    assert any(layer.output.shape[1:] == (8, 8, 16) for layer in model.layers)


def test_size_not_multiple_of_poolings_is_refused_before_building(tmp_path):
    path = tmp_path / "c.config"
    path.write_text(tiny_config_text(tmp_path, image_height="30"))
    with pytest.raises(ConfigError, match="multiple of 2\\*\\*num_layers"):
        TensorflowUNet(path)


def test_saved_model_reloads_in_a_fresh_process_with_safe_mode(tmp_path):
    path = tmp_path / "c.config"
    path.write_text(tiny_config_text(tmp_path))
    model = TensorflowUNet(path).model
    x = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype("uint8")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import allseg.model.losses_metrics, keras, "
            f"numpy as np; m = keras.models.load_model({str(tmp_path / 'm.keras')!r}); "
            f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), "
            "verbose=0)); print(m.loss.name)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("bce_dice")
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-6)
    # Without the project's code: the loss cannot be rebuilt, the message says which class, and
    # compile=False (to predict only) loads and predicts the same.
    bare = (f"import keras, numpy as np; p = {str(tmp_path / 'm.keras')!r}\n"
            "try:\n    keras.models.load_model(p)\nexcept TypeError as e:\n    print('refused:', e)\n"
            f"m = keras.models.load_model(p, compile=False); np.save({str(tmp_path / 'z.npy')!r}, "
            f"m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))")
    proc = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "BceDice" in proc.stdout
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, atol=1e-6)


def test_training_metrics_pool_pixels_and_do_not_reward_empty_predictions():
    truth = np.zeros((2, 4, 4, 1), "float32")
    truth[0, :2, :2] = 1  # 4 foreground pixels in the first image, none in the second
    nothing = np.zeros_like(truth)
    dice, iou = Dice(), IoU()
    dice.update_state(truth, nothing)
    iou.update_state(truth, nothing)
    # per-image "both empty = 1" would give 0.5 here; pooled over the batch it is 0
    assert float(dice.result()) == 0.0 and float(iou.result()) == 0.0
    half = truth.copy()
    half[0, 0, :2] = 0  # predicts 2 of the 4 pixels
    dice.reset_state()
    dice.update_state(truth, half)
    assert float(dice.result()) == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))


def test_per_image_dice_loss_weighs_each_image_alike_and_reloads_from_its_config():
    truth = np.zeros((2, 8, 8, 1), "float32")
    truth[0, :4, :4] = 1  # a 16-pixel cell in the first image, nothing in the second
    pred = np.full_like(truth, 0.001)
    pred[0, :4, :4] = 0.999  # both images right
    pred_miss = pred.copy()
    pred_miss[1, 0, 0] = 0.999  # one false pixel in the otherwise empty second image
    per_image, pooled = make_loss("bce_dice_per_image"), make_loss("bce_dice")
    # Pooled over the batch one stray pixel among 17 barely counts; per image it spoils half the
    # batch's Dice, as it spoils the mean per-image Dice score.
    per_image_cost = float(per_image(truth, pred_miss)) - float(per_image(truth, pred))
    pooled_cost = float(pooled(truth, pred_miss)) - float(pooled(truth, pred))
    assert per_image_cost > 0.2 and per_image_cost > 3 * pooled_cost
    # An empty truth met by an empty prediction is a perfect image, not a zero.
    assert float(per_image(truth, pred)) < 0.05
    again = BceDice.from_config(per_image.get_config())
    assert again.per_image and float(again(truth, pred_miss)) == pytest.approx(float(per_image(truth, pred_miss)))
