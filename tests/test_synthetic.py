import cv2
import numpy as np

from allseg.data.images import mask_from_segmented
from allseg.cells.scoring import mask_dice
from allseg.data.synthetic import BLAST_STYLE, make_smear


def jpeg_roundtrip(rgb):
    _, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def test_segmented_image_gives_back_the_blast_mask_through_the_gray_30_rule():
    for i in range(8):
        original, segmented, mask = make_smear(np.random.default_rng(i), "Early")
        assert original.shape == (224, 224, 3) and original.dtype == np.uint8
        recovered = mask_from_segmented(jpeg_roundtrip(segmented))
        assert mask_dice(recovered, mask) > 0.97


def test_blasts_are_violet_on_a_pale_background_and_grow_by_category():
    areas = {}
    for category in BLAST_STYLE:
        fractions = []
        for i in range(6):
            original, _, mask = make_smear(np.random.default_rng(i), category)
            blast, rest = original[mask].mean(0), original[~mask].mean(0)
            assert blast[2] > blast[1] + 40  # violet: blue well above green
            assert rest.mean() > blast.mean() + 40  # background and red cells much paler
            fractions.append(mask.mean())
        areas[category] = np.mean(fractions)
    assert areas["Benign"] < areas["Early"] < areas["Pro"]
