"""Inference safety checks that need no model."""
import pytest

from allseg.errors import UserError
from allseg.inference import _check_folders


def test_inference_refuses_outputs_inside_the_input_folder(tmp_path):
    images = tmp_path / "mini_test"
    images.mkdir()
    _check_folders(images, tmp_path / "out", tmp_path / "overlay", tmp_path / "montage.png")
    for out, overlay, montage in ((images, tmp_path / "o", tmp_path / "m.png"),
                                  (tmp_path / "o", images / "sub", tmp_path / "m.png"),
                                  (tmp_path / "o", tmp_path / "p", images / "m.png")):
        with pytest.raises(UserError, match="inside images_dir"):
            _check_folders(images, out, overlay, montage)
