"""Every kind of bad file or value gets one clear message, no traceback, and nothing of the user's
is changed; inference over a folder goes on past the files it cannot use."""
import hashlib
import shutil

import cv2
import numpy as np

from conftest import run_script, tiny_config_text

def snapshot(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_bad_files(folder, good_jpg):
    """The bad files a lab folder may hold, beside good ones; returns the bad names."""
    data = good_jpg.read_bytes()
    (folder / "zero bytes.jpg").write_bytes(b"")
    (folder / "cut off.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.jpg").write_text("this is a text file, not a picture")
    return ["zero bytes.jpg", "cut off.jpg", "notes.jpg"]


# `trained` (conftest) lives under a folder with a space and non-ASCII letters, so every script
# here also copes with such paths.
def test_unusable_training_files_are_all_named_before_training_and_left_alone(tmp_path, trained):
    root, _ = trained
    data = tmp_path / "ALL"
    shutil.copytree(root / "ALL", data)
    images = data / "train" / "original" / "Early"
    masks = data / "train" / "segmented" / "Early"
    good = sorted(images.glob("*.jpg"))[0]
    bad = write_bad_files(images, good)
    for name in bad:  # paired, so only their content is wrong
        shutil.copy2(masks / good.name, masks / name)
    before = snapshot(data)
    config = tmp_path / "bad.config"
    config.write_text(tiny_config_text(tmp_path))
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "3 unusable file(s)" in proc.stderr
    for name, why in zip(bad, ("empty file", "truncated JPEG", "not a readable image")):
        assert f"{name}: {why}" in proc.stderr
    assert snapshot(data) == before and not (tmp_path / "models").exists()


def test_inference_segments_odd_images_and_goes_on_past_bad_ones(tmp_path, trained):
    root, config = trained
    mini = root / "mini_test"
    good = sorted(mini.glob("*.jpg"))[0]
    rgb = cv2.imread(str(good))
    bad = write_bad_files(mini, good)
    alpha = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    cv2.imwrite(str(mini / "with alpha.png"), alpha)
    cv2.imwrite(str(mini / "sixteen bit.png"), rgb.astype(np.uint16) * 257)
    cv2.imwrite(str(mini / "gray.png"), cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(mini / "huge.jpg"), cv2.resize(rgb, (6000, 4000)))
    before = snapshot(mini)

    proc = run_script("TensorflowUNetALLInfer.py", config)
    assert "Traceback" not in proc.stderr
    assert "3 unreadable image(s)" in proc.stdout
    for name in bad:
        assert name in proc.stdout
        assert not (root / "mini_test_output" / f"{name[:-4]}.png").exists()
    for name, shape in (("with alpha", rgb.shape[:2]), ("sixteen bit", rgb.shape[:2]),
                        ("gray", rgb.shape[:2]), ("huge", (4000, 6000)), (good.stem, rgb.shape[:2])):
        mask = cv2.imread(str(root / "mini_test_output" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == shape, name
    assert snapshot(mini) == before


def test_evaluation_with_a_model_of_another_size_or_no_test_images(tmp_path, trained):
    root, _ = trained
    other = tmp_path / "other size.config"
    other.write_text(tiny_config_text(root, image_width="64", image_height="64"), encoding="utf-8")
    for script in ("TensorflowUNetALLEvaluator.py", "TensorflowUNetALLInfer.py"):
        proc = run_script(script, other, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "was trained for inputs 32x32x3" in proc.stderr and "64x64x3" in proc.stderr

    empty = tmp_path / "empty test"
    for part in ("original", "segmented"):
        (empty / part / "Early").mkdir(parents=True)
    text = tiny_config_text(root).replace(f"{root.as_posix()}/ALL/test", empty.as_posix())
    config = tmp_path / "empty.config"
    config.write_text(text, encoding="utf-8")
    proc = run_script("TensorflowUNetALLEvaluator.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no images" in proc.stderr


def test_missing_empty_and_unknown_category_folders(tmp_path, trained):
    root, _ = trained
    (root / "ALL" / "train" / "original" / "Empty").mkdir(exist_ok=True)
    (root / "ALL" / "train" / "segmented" / "Empty").mkdir(exist_ok=True)
    for category, message in (('"Empty"', "no images"), ('"Nope"', "folder not found")):
        config = tmp_path / "c.config"
        text = tiny_config_text(root).replace('category       = "Early"\nloss',
                                              f'category       = {category}\nloss')
        config.write_text(text, encoding="utf-8")
        proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert message in proc.stderr
    assert "Early" in proc.stderr  # the unknown one is told which categories exist


def test_batch_larger_than_the_dataset_trains_on_one_short_batch(tmp_path, trained):
    root, _ = trained
    config = tmp_path / "big batch.config"
    text = tiny_config_text(tmp_path, batch_size="64", epochs="1")
    config.write_text(text.replace(f"{tmp_path.as_posix()}/ALL", f"{root.as_posix()}/ALL"),
                      encoding="utf-8")
    proc = run_script("TensorflowUNetALLTrainer.py", config)
    assert "Trained 1 epochs" in proc.stdout
    assert (tmp_path / "models" / "best_model.keras").exists()


def test_outputs_equal_to_the_input_folder_are_refused(tmp_path, trained):
    root, _ = trained
    text = tiny_config_text(root).replace(f'output_dir     = "{root.as_posix()}/mini_test_output"',
                                          f'output_dir     = "{root.as_posix()}/mini_test"')
    config = tmp_path / "same.config"
    config.write_text(text, encoding="utf-8")
    before = snapshot(root / "mini_test")
    proc = run_script("TensorflowUNetALLInfer.py", config, check=False)
    assert proc.returncode == 2 and "inside images_dir" in proc.stderr
    assert snapshot(root / "mini_test") == before
