"""Inference engines: each gives Keras's masks, and its conversion is cached, reused and rebuilt
as the model file changes or the cache is damaged."""
import json
import os
from types import SimpleNamespace

import cv2
import keras
import numpy as np
import pytest

from conftest import tiny_config_text

# The test models are saved compiled but untrained: Keras notes the optimizer it cannot restore.
pytestmark = pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")

CONVERTED = [("openvino", "model.bin"), ("litert", "model.tflite")]


def write_model(folder, seed, size=32):
    """A tiny untrained U-Net saved as best_model.keras (random weights give varied masks)."""
    from allseg.model.losses_metrics import make_loss
    from allseg.model.architecture import build_unet
    keras.utils.set_random_seed(seed)
    model = build_unet(size, size, base_filters=4, num_layers=2, dropout_rate=0.05, batch_norm=True)
    model.compile(loss=make_loss("bce_dice"))
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "best_model.keras")
    return model


@pytest.fixture
def setup(tmp_path):
    """(config for an engine, the Keras model) in a fresh folder."""
    model = write_model(tmp_path / "models", seed=7)

    def config(engine):
        from allseg.core.config import load_config
        path = tmp_path / f"{engine}.config"
        path.write_text(tiny_config_text(tmp_path) + f'engine = "{engine}"\n', encoding="utf-8")
        return load_config(path)
    return config, model


def smears(count=3):
    """Synthetic smear images at sizes other than the model's."""
    from allseg.data.synthetic import make_smear
    rng = np.random.default_rng(2)
    return [cv2.resize(make_smear(rng, "Early")[0], size, interpolation=cv2.INTER_AREA)
            for size in ((48, 40), (90, 70), (32, 32))[:count]]


def lines(text, start):
    return [line for line in text.splitlines() if line.startswith(start)]


@pytest.mark.parametrize("name", ["openvino", "litert"])
def test_every_engine_gives_the_keras_masks(setup, capsys, name):
    from allseg.infer.engines import load_predictor
    from allseg.infer.predict import predict_masks, predict_probabilities
    config, model = setup
    cfg = config(name)
    engine = load_predictor(cfg)
    out = capsys.readouterr().out
    assert lines(out, f"Inference engine: {name} ")
    assert lines(out, f"Converted best_model.keras for {name}")

    x = np.random.default_rng(4).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    want = model.predict_on_batch(x.astype(np.float32))
    assert want.std() > 1e-3
    assert np.abs(engine.predict_on_batch(x) - want).max() < 1e-4
    assert np.abs(predict_probabilities(engine, x[:3], tta_flips=True)  # another batch size
                  - predict_probabilities(model, x[:3], tta_flips=True)).max() < 1e-4
    images = smears()
    for tiled in (False, True):
        for tta in (False, True):
            m = SimpleNamespace(**{**vars(cfg.model), "tta_flips": tta})
            got = predict_masks(engine, images, m, batch_size=4, tiled=tiled)
            ref = predict_masks(model, images, m, batch_size=4, tiled=tiled)
            differ = sum(int(np.count_nonzero(a != b)) for a, b in zip(got, ref))
            pixels = sum(a.size for a in ref)
            assert 0.02 < np.mean([r.mean() for r in ref]) < 0.98  # masks with something in them
            assert differ <= pixels * 1e-3, (name, tiled, tta, differ, pixels)


@pytest.mark.parametrize("name,converted", CONVERTED)
def test_the_conversion_is_reused_then_rebuilt_when_the_model_changes(setup, capsys, tmp_path,
                                                                      name, converted):
    from allseg.infer.engines import load_predictor
    config, _ = setup
    cfg = config(name)
    load_predictor(cfg)
    folder = tmp_path / "models" / f"best_model.{name}"
    stamp = json.loads((folder / "stamp.json").read_text())
    mtime = (folder / converted).stat().st_mtime_ns
    capsys.readouterr()

    load_predictor(cfg)  # unchanged model: the same files, no conversion
    out = capsys.readouterr().out
    assert not lines(out, "Converted") and not lines(out, "note:"), out
    assert (folder / converted).stat().st_mtime_ns == mtime
    assert json.loads((folder / "stamp.json").read_text()) == stamp

    changed = write_model(tmp_path / "models", seed=8)  # trained again
    engine = load_predictor(cfg)
    out = capsys.readouterr().out
    assert lines(out, "note: not using the cached conversion") and "model file has changed" in out
    assert lines(out, f"Converted best_model.keras for {name}")
    assert json.loads((folder / "stamp.json").read_text())["model_sha256"] != stamp["model_sha256"]
    x = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert np.abs(engine.predict_on_batch(x)
                  - changed.predict_on_batch(x.astype(np.float32))).max() < 1e-4
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize("name,converted", CONVERTED)
def test_a_damaged_or_foreign_cache_is_rebuilt_with_a_note(setup, capsys, tmp_path, name, converted):
    from allseg.infer.engines import load_predictor
    config, model = setup
    cfg = config(name)
    folder = tmp_path / "models" / f"best_model.{name}"
    x = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    want = model.predict_on_batch(x.astype(np.float32))
    load_predictor(cfg)
    capsys.readouterr()

    # A converted file damaged in place (same size, some bytes changed): found, not trusted.
    data = bytearray((folder / converted).read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = os.urandom(64)
    (folder / converted).write_bytes(bytes(data))
    engine = load_predictor(cfg)
    out = capsys.readouterr().out
    assert f"{converted} is missing or damaged" in out and lines(out, "Converted"), out
    assert np.abs(engine.predict_on_batch(x) - want).max() < 1e-4

    # A stamp that is not JSON: the folder is not recognisably ours, so it is kept aside.
    (folder / "stamp.json").write_text("{not json", encoding="utf-8")
    engine = load_predictor(cfg)
    out = capsys.readouterr().out
    assert "stamp.json is missing or unreadable" in out and "kept it as" in out, out
    assert lines(out, "Converted")
    assert len(list(folder.parent.glob(f"best_model.{name}.previous-*"))) == 1
    assert np.abs(engine.predict_on_batch(x) - want).max() < 1e-4

    # Some other file where the cache goes.
    import shutil
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    load_predictor(cfg)
    out = capsys.readouterr().out
    assert "kept it as" in out and lines(out, "Converted") and (folder / "stamp.json").is_file()


def test_a_conversion_that_differs_from_keras_is_refused_with_the_way_back(setup, monkeypatch,
                                                                           tmp_path):
    import allseg.infer.engines as engines
    from allseg.core.errors import UserError
    config, _ = setup
    monkeypatch.setattr(engines, "CHECK_TOLERANCE", -1.0)  # any difference is too large
    with pytest.raises(UserError, match=r'openvino 2026.*set \[infer\] engine = "keras" to fall back'):
        engines.load_predictor(config("openvino"))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["best_model.keras"]


def test_auto_runs_openvino_on_a_cpu_and_keras_runs_the_model_itself(setup, capsys):
    from allseg.core.accel import gpu_names
    from allseg.infer.engines import load_predictor
    config, _ = setup
    assert load_predictor(config("keras")).__class__.__name__ == "Functional"
    assert lines(capsys.readouterr().out, "Inference engine: keras ")
    engine = load_predictor(config("auto"))
    out = capsys.readouterr().out
    if gpu_names():
        assert lines(out, "Inference engine: keras ") and "(auto: GPU" in out
    else:
        assert engine.name == "openvino"
        assert "Inference engine: openvino 2026" in out and "(auto: CPU, no GPU visible)" in out


def test_evaluate_and_infer_run_the_engine(setup, capsys, tmp_path, synthetic_master):
    import shutil

    from allseg.evaluate.evaluation import evaluate
    from allseg.infer.inference import infer
    config, _ = setup
    for sub in ("original", "segmented"):
        shutil.copytree(synthetic_master / ("Original" if sub == "original" else "Segmented") / "Early",
                        tmp_path / "ALL" / "test" / sub / "Early")
    shutil.copytree(synthetic_master / "Original" / "Early", tmp_path / "mini_test")
    cfg_keras, cfg_ov = config("keras"), config("openvino")
    ref = evaluate(cfg_keras)
    got = evaluate(cfg_ov)
    assert "Inference engine: openvino" in capsys.readouterr().out
    assert got["loss"] == pytest.approx(ref["loss"], abs=1e-4)
    assert got["pooled_dice"] == pytest.approx(ref["pooled_dice"], abs=1e-3)
    written, _, failed = infer(cfg_ov)
    assert "Inference engine: openvino" in capsys.readouterr().out
    assert len(written) == 12 and not failed


def test_a_bad_engine_name_is_refused_naming_file_section_key_value_and_choices(tmp_path):
    from allseg.core.config import load_config
    from allseg.core.errors import ConfigError
    path = tmp_path / "bad.config"
    path.write_text(tiny_config_text(tmp_path) + 'engine = "onnx"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f'{path}: [infer] engine = "onnx": allowed: one of "auto" or '
                               '"keras" or "openvino" or "litert"')
