import cv2
import numpy as np
import pytest

from allseg.data.dataset import ALLDataset
from allseg.data.pairing import split_pairs
from allseg.core.errors import DataError
from allseg.data.images import read_mask, read_rgb
from allseg.data.pairing import find_pairs


def write_pair(root, stem, image_ext=".jpg", mask_ext=".jpg", size=(40, 48), category="Early"):
    """An original and its segmented image: a bright square on black, one dim 'noise' block."""
    (root / "img" / category).mkdir(parents=True, exist_ok=True)
    (root / "seg" / category).mkdir(parents=True, exist_ok=True)
    h, w = size
    image = np.full((h, w, 3), 200, np.uint8)
    seg = np.zeros((h, w, 3), np.uint8)
    seg[5:15, 5:15] = (150, 60, 200)   # a cell: grayscale well above 30
    seg[20:24, 20:24] = (25, 25, 25)   # JPEG-like noise on the background: grayscale 25
    cv2.imwrite(str(root / "img" / category / f"{stem}{image_ext}"), image)
    cv2.imwrite(str(root / "seg" / category / f"{stem}{mask_ext}"), seg)


def test_pairs_by_stem_across_extensions_and_letter_case(tmp_path):
    write_pair(tmp_path, "a", ".JPG", ".png")
    write_pair(tmp_path, "b", ".png", ".bmp")
    write_pair(tmp_path, "c", ".tif", ".jpeg")
    (tmp_path / "img" / "Early" / "notes.txt").write_text("not an image")
    pairs = find_pairs(tmp_path / "img", tmp_path / "seg", "Early")
    assert [(p.image.name, p.mask.name) for p in pairs] == [
        ("a.JPG", "a.png"), ("b.png", "b.bmp"), ("c.tif", "c.jpeg")]


def test_mask_is_where_the_segmented_image_is_brighter_than_30(tmp_path):
    write_pair(tmp_path, "a", mask_ext=".png")
    mask = read_mask(tmp_path / "seg" / "Early" / "a.png")
    assert mask.dtype == bool and mask.shape == (40, 48)
    assert mask[5:15, 5:15].all()
    assert mask.sum() == 100  # the dim block (grayscale 25) is background


def test_unpaired_files_are_listed_in_one_error(tmp_path):
    write_pair(tmp_path, "a")
    for i in range(7):
        write_pair(tmp_path, f"lonely{i}")
        (tmp_path / "seg" / "Early" / f"lonely{i}.jpg").unlink()
    write_pair(tmp_path, "orphan")
    (tmp_path / "img" / "Early" / "orphan.jpg").unlink()
    with pytest.raises(DataError) as info:
        find_pairs(tmp_path / "img", tmp_path / "seg", "Early")
    message = str(info.value)
    assert message.startswith("8 unpaired file(s)")
    assert "image without mask" in message and "and 3 more" in message


def test_unreadable_and_empty_files_are_listed_before_any_training(tmp_path):
    write_pair(tmp_path, "good")
    write_pair(tmp_path, "empty")
    write_pair(tmp_path, "text")
    (tmp_path / "img" / "Early" / "empty.jpg").write_bytes(b"")
    (tmp_path / "seg" / "Early" / "text.jpg").write_text("this is not a JPEG")
    with pytest.raises(DataError) as info:
        ALLDataset(tmp_path / "img", tmp_path / "seg", "Early", 32, 32)
    message = str(info.value)
    assert message.startswith("2 unusable file(s)")
    assert "empty.jpg: empty file" in message and "text.jpg: not a readable image" in message


def test_missing_category_names_the_ones_that_exist(tmp_path):
    write_pair(tmp_path, "a")
    with pytest.raises(DataError, match=r"image folder not found: .*Pre \(categories there: Early\)"):
        find_pairs(tmp_path / "img", tmp_path / "seg", "Pre")


def test_gray_alpha_and_16_bit_images_read_as_rgb_uint8(tmp_path):
    gray = np.full((10, 12), 90, np.uint8)
    rgba = np.zeros((10, 12, 4), np.uint8)
    deep = np.full((10, 12, 3), 40000, np.uint16)
    for name, image in (("g.png", gray), ("a.png", rgba), ("d.png", deep)):
        cv2.imwrite(str(tmp_path / name), image)
        rgb = read_rgb(tmp_path / name)
        assert rgb.shape == (10, 12, 3) and rgb.dtype == np.uint8
    assert read_rgb(tmp_path / "d.png").max() == 40000 // 257


def test_pipeline_resizes_to_model_size_and_keeps_masks_binary(tmp_path):
    for i in range(5):
        write_pair(tmp_path, f"p{i}", mask_ext=".png")
    data = ALLDataset(tmp_path / "img", tmp_path / "seg", "Early", 32, 32)
    images, masks = next(iter(data.dataset(batch_size=5, shuffle_seed=1)))
    assert images.shape == (5, 32, 32, 3) and images.dtype.name == "float32"
    pixels = images.numpy()  # raw 0-255 values: the model's Rescaling layer scales them
    assert pixels.max() > 100 and np.array_equal(pixels, np.round(pixels))
    assert masks.shape == (5, 32, 32, 1)
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
    assert 0 < masks.numpy().mean() < 0.2


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    for i in range(10):
        write_pair(tmp_path, f"p{i}")
    pairs = find_pairs(tmp_path / "img", tmp_path / "seg", "Early")
    train_a, val_a = split_pairs(pairs, 0.2, seed=7)
    train_b, val_b = split_pairs(pairs, 0.2, seed=7)
    assert (train_a, val_a) == (train_b, val_b)
    assert len(val_a) == 2 and not set(train_a) & set(val_a)
    with pytest.raises(DataError, match="need at least one of each"):
        split_pairs(pairs[:2], 0.1, seed=7)


def test_training_can_leave_the_truths_specks_out(tmp_path):
    from allseg.data.dataset import load_pair
    image = np.full((40, 40, 3), 200, np.uint8)
    segmented = np.zeros((40, 40, 3), np.uint8)
    segmented[5:15, 5:15] = 255   # a 100-pixel cell
    segmented[30:32, 30:32] = 255  # a 4-pixel speck
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "a_mask.png"), segmented)
    _, raw = load_pair(tmp_path / "a.png", tmp_path / "a_mask.png", 40, 40)
    _, cells = load_pair(tmp_path / "a.png", tmp_path / "a_mask.png", 40, 40, truth_min_area=50)
    assert raw.sum() == 104 and cells.sum() == 100 and cells[31, 31, 0] == 0


def test_stain_jitter_recolours_the_images_and_leaves_the_masks_alone(tmp_path):
    for i in range(4):
        write_pair(tmp_path, f"p{i}", mask_ext=".png")
    data = ALLDataset(tmp_path / "img", tmp_path / "seg", "Early", 32, 32)
    plain_images, plain_masks = next(iter(data.dataset(batch_size=4, shuffle_seed=3)))
    images, masks = next(iter(data.dataset(batch_size=4, shuffle_seed=3, stain=0.2)))
    assert np.array_equal(masks.numpy(), plain_masks.numpy())  # same order, masks untouched
    shift = np.abs(images.numpy() - plain_images.numpy())
    assert 0 <= images.numpy().min() and images.numpy().max() <= 255
    assert shift.mean() > 1.0  # recoloured ...
    assert np.mean(shift < 60) > 0.95  # ... but still the same smear


def test_no_stain_jitter_gives_the_image_back():
    import tensorflow as tf

    from allseg.data.augment import _stain
    image = tf.constant(np.random.default_rng(0).integers(1, 256, (16, 16, 3)), tf.float32)
    back = _stain(image, tf.constant([1, 2], tf.int64), 1e-12).numpy()
    assert np.abs(back - image.numpy()).max() < 0.01
