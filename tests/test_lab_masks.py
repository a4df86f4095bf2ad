"""A lab's own masks (allseg/data/lab_masks.py) and QuPath GeoJSON (allseg/data/geojson.py): each
format read into cells and nuclei, GeoJSON written and read back, and every bad input refused
with a message naming its file, on small files written here."""
import json
import re

import cv2
import numpy as np
import pytest

from allseg.core.errors import DataError
from allseg.data import mask_formats
from allseg.data.geojson import cell_id, cells_to_geojson, read_qupath_cells, rasterize_features
from allseg.data.lab_masks import (BINARY, CELLPOSE, GEOJSON, LABELS, THREE_LEVEL,
                                   detect_mask_format, read_lab_masks, summary_line)
from allseg.data.mask_formats import MaskFormat, labels_from_ids

SHAPE = (40, 60)  # rows, columns: not square, so a swapped x and y would show


def disc(centre, radius, shape=SHAPE):
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def rectangle(top, left, bottom, right, shape=SHAPE):
    """Pixels rows top..bottom-1, columns left..right-1."""
    mask = np.zeros(shape, bool)
    mask[top:bottom, left:right] = True
    return mask


def write_image(folder, stem, shape=SHAPE):
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.png"
    assert cv2.imwrite(str(path), np.full((*shape, 3), 200, np.uint8))
    return path


def write_mask(folder, name, values):
    folder.mkdir(exist_ok=True)
    path = folder / name
    assert cv2.imwrite(str(path), values)
    return path


def write_geojson(folder, stem, data):
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def square_polygon(left, top, right, bottom):
    """A GeoJSON Polygon over the pixels [top, bottom) x [left, right), corners in QuPath's x, y."""
    return {"type": "Polygon",
            "coordinates": [[[left, top], [right, top], [right, bottom], [left, bottom],
                             [left, top]]]}


def read_one(tmp_path, stem="a"):
    """The one LabMask of tmp_path/images and tmp_path/masks."""
    (lab_mask,) = read_lab_masks(tmp_path / "images", tmp_path / "masks")
    assert lab_mask.image.stem == lab_mask.mask.stem == stem
    return lab_mask


def cell_ious(truth, found):
    """Each true cell's IoU with the found cell that overlaps it most."""
    ious = []
    for number in range(1, truth.max() + 1):
        cell = truth == number
        best = np.bincount(found[cell], minlength=found.max() + 1)[1:].argmax() + 1
        other = found == best
        ious.append(np.count_nonzero(cell & other) / np.count_nonzero(cell | other))
    return ious


# ---- each format -----------------------------------------------------------------------------

@pytest.mark.parametrize("on", [255, 1])
def test_a_binary_mask_gives_one_cell_per_connected_region(tmp_path, on):
    two_cells = disc((12, 15), 7) | disc((25, 45), 9)
    write_image(tmp_path / "images", "a")
    write_mask(tmp_path / "masks", "a.png", (two_cells * on).astype(np.uint8))
    write_image(tmp_path / "images", "b")
    write_mask(tmp_path / "masks", "b.png", np.zeros(SHAPE, np.uint8))
    a, b = read_lab_masks(tmp_path / "images", tmp_path / "masks")
    assert a.format == b.format == BINARY and a.nucleus is None
    assert a.labels.dtype == np.int32 and a.labels.shape == SHAPE
    assert a.cells == 2 and np.array_equal(a.labels > 0, two_cells)
    assert b.cells == 0  # an image with no cell is kept, as background
    assert summary_line([a, b]) == ("Read 2 images with 2 masks (binary 0/255 or 0/1: whole "
                                    "cells, one per connected region): 2 cells, 1 image of "
                                    "background only")


def test_a_three_level_mask_gives_whole_cells_and_nuclei(tmp_path):
    cells = disc((12, 15), 8) | disc((26, 44), 10)
    nuclei = disc((12, 15), 4) | disc((26, 44), 5)
    values = np.where(nuclei, 255, np.where(cells, 128, 0)).astype(np.uint8)
    write_image(tmp_path / "images", "a")
    write_mask(tmp_path / "masks", "a.png", values)
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == THREE_LEVEL and lab_mask.cells == 2
    assert np.array_equal(lab_mask.labels > 0, cells)
    assert lab_mask.nucleus.dtype == bool and np.array_equal(lab_mask.nucleus, nuclei)
    assert summary_line([lab_mask]) == ("Read 1 image with 1 mask (three-level 0/128/255: cell "
                                        "and nucleus): 2 cells")


def test_a_three_level_mask_with_a_few_stray_values_counts_each_as_its_nearest_level(tmp_path):
    """Drawing tools leave a few pixels of other values (five of the shared CellaVision masks
    hold 1 to 179): the mask is still three-level, each value read as the nearest level."""
    cells, nuclei = disc((12, 15), 8), disc((12, 15), 4)
    values = np.where(nuclei, 255, np.where(cells, 128, 0)).astype(np.uint8)
    values[0, 0], values[12, 15], values[12, 21] = 7, 200, 90  # background, nucleus, cytoplasm
    write_image(tmp_path / "images", "a")
    write_mask(tmp_path / "masks", "a.png", values)
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == THREE_LEVEL and lab_mask.cells == 1
    assert np.array_equal(lab_mask.labels > 0, cells) and np.array_equal(lab_mask.nucleus, nuclei)
    values[20:30, 30:40] = 60  # 100 more pixels are no strays: many values, read as cell ids
    assert detect_mask_format(values, "b.png") == LABELS


def test_16_bit_labels_keep_touching_cells_apart(tmp_path):
    left, right = rectangle(5, 5, 30, 25), rectangle(5, 25, 30, 50)  # sharing an edge
    values = np.zeros(SHAPE, np.uint16)
    values[left], values[right] = 7, 300  # ids as a tool wrote them: any, not 1..n
    write_image(tmp_path / "images", "a")
    write_mask(tmp_path / "masks", "a.tif", values)
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == LABELS and lab_mask.nucleus is None
    assert lab_mask.cells == 2  # as binary they would be one region
    assert sorted(np.count_nonzero(lab_mask.labels == n) for n in (1, 2)) == [500, 625]
    assert {frozenset(np.unique(lab_mask.labels[part])) for part in (left, right)} == \
        {frozenset([1]), frozenset([2])}


def test_an_8_bit_image_of_many_ids_is_labels_and_a_16_bit_0_65535_one_is_binary():
    ids = np.zeros(SHAPE, np.uint8)
    for number, top in enumerate(range(2, 38, 9), start=1):
        ids[top:top + 5, 5:20] = number
    assert detect_mask_format(ids, "ids.png") == LABELS
    assert detect_mask_format(rectangle(2, 2, 9, 9).astype(np.uint16) * 65535, "wide.png") == BINARY


def qupath_cell(left, top, right, bottom, nucleus=None):
    feature = {"type": "Feature", "id": "5f0c3e5e-0000-4000-8000-000000000000",
               "geometry": square_polygon(left, top, right, bottom),
               "properties": {"objectType": "cell", "measurements": {"Area": 1.0}}}
    if nucleus is not None:
        feature["nucleusGeometry"] = square_polygon(*nucleus)
    return feature


def test_qupath_cells_give_cells_and_nuclei_and_their_region_is_left_out(tmp_path):
    region = {"type": "Feature", "geometry": square_polygon(0, 0, 60, 40),
              "properties": {"objectType": "annotation"}}
    collection = {"type": "FeatureCollection", "features": [
        region, qupath_cell(10, 5, 20, 15, nucleus=(12, 7, 16, 11)),
        qupath_cell(30, 20, 50, 35, nucleus=(35, 25, 40, 30))]}
    write_image(tmp_path / "images", "a")
    write_geojson(tmp_path / "masks", "a", collection)
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == GEOJSON and lab_mask.cells == 2
    # x is the column and y the row, the pixels those whose centres the outline holds.
    assert np.array_equal(lab_mask.labels == 1, rectangle(5, 10, 15, 20))
    assert np.array_equal(lab_mask.labels == 2, rectangle(20, 30, 35, 50))
    assert np.array_equal(lab_mask.nucleus, rectangle(7, 12, 11, 16) | rectangle(25, 35, 30, 40))
    assert summary_line([lab_mask]) == ("Read 1 image with 1 mask (QuPath GeoJSON: cell and "
                                        "nucleus): 2 cells")


def test_plain_annotations_are_cells_without_nuclei_and_holes_stay_holes(tmp_path):
    ring = {"type": "Polygon", "coordinates": [
        [[5, 5], [25, 5], [25, 25], [5, 25], [5, 5]],
        [[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]]}  # a hole in the middle
    two_parts = {"type": "MultiPolygon", "coordinates": [
        square_polygon(30, 2, 40, 8)["coordinates"], square_polygon(45, 30, 55, 38)["coordinates"]]}
    features = [{"type": "Feature", "geometry": ring, "properties": {"objectType": "annotation"}},
                {"type": "Feature", "geometry": two_parts, "properties": {}}]
    labels, nucleus = rasterize_features(features, *SHAPE)
    assert nucleus is None and labels.max() == 2
    assert np.array_equal(labels == 1, rectangle(5, 5, 25, 25) & ~rectangle(10, 10, 20, 20))
    assert np.array_equal(labels == 2, rectangle(2, 30, 8, 40) | rectangle(30, 45, 38, 55))


def test_a_bare_list_of_features_is_read_as_qupath_writes_it(tmp_path):
    features = [qupath_cell(2, 2, 12, 12), qupath_cell(40, 20, 55, 36, nucleus=(44, 24, 58, 30))]
    path = write_geojson(tmp_path, "a", features)
    labels, nucleus = read_qupath_cells(path, *SHAPE)
    assert labels.max() == 2
    assert np.count_nonzero(labels == 1) == 100 and np.count_nonzero(labels == 2) == 240
    # The nucleus reaching past its cell (x 55..58) is cut at the cell.
    assert np.count_nonzero(nucleus) == 66 and not nucleus[labels == 1].any()


# ---- GeoJSON written and read back -----------------------------------------------------------

def round_trip_cells():
    """Cells of a few hundred pixels: two discs touching along a seam (labels keep them apart),
    a ring, and one cell whose two parts meet only at a corner."""
    shape = (80, 100)
    labels = np.zeros(shape, np.int32)
    labels[disc((20, 20), 11, shape)] = 1
    labels[disc((20, 40), 11, shape) & (labels == 0)] = 2
    labels[disc((55, 25), 13, shape) & ~disc((55, 25), 5, shape)] = 3
    labels[rectangle(40, 60, 55, 75, shape) | rectangle(55, 75, 70, 92, shape)] = 4
    nucleus = disc((20, 20), 5, shape) | disc((20, 40), 5, shape) | rectangle(45, 64, 50, 70, shape)
    return labels, nucleus


def test_labels_to_geojson_and_back_give_the_same_cells():
    labels, nucleus = round_trip_cells()
    assert all(300 <= np.count_nonzero(labels == n) <= 500 for n in range(1, 5))
    rows = [{"cell": n, "area_px": int(np.count_nonzero(labels == n)), "touches_border": False,
             "file": "a.png"} for n in range(1, 5)]
    collection = json.loads(json.dumps(cells_to_geojson(labels, "a", nucleus, rows)))

    features = collection["features"]
    assert collection["type"] == "FeatureCollection" and len(features) == 4
    for number, feature in enumerate(features, start=1):
        assert feature["type"] == "Feature" and feature["properties"]["objectType"] == "cell"
        assert feature["id"] == cell_id("a", number)
        assert feature["properties"]["measurements"] == {
            "cell": number, "area_px": np.count_nonzero(labels == number), "touches_border": 0}
    ring = features[2]["geometry"]
    assert ring["type"] == "Polygon" and len(ring["coordinates"]) == 2  # outline and hole
    assert features[3]["geometry"]["type"] == "MultiPolygon"
    assert "nucleusGeometry" not in features[2]  # the ring has no nucleus

    back, back_nucleus = rasterize_features(features, *labels.shape)
    ious = cell_ious(labels, back)
    assert len(ious) == 4 and min(ious) >= 0.95
    # Outlines along the pixel corners read back exactly, not just closely.
    assert np.array_equal(back, labels) and np.array_equal(back_nucleus, nucleus & (labels > 0))


def test_cell_ids_are_uuids_that_repeat_for_the_same_file_and_cell_only():
    assert cell_id("a", 1) == cell_id("a", 1)
    ids = {cell_id(stem, n) for stem in ("a", "b") for n in (1, 2, 12)}
    assert len(ids) == 6 and all(re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i)
                                 for i in ids)


def test_a_written_geojson_is_read_back_as_a_lab_mask(tmp_path):
    labels, nucleus = round_trip_cells()
    write_image(tmp_path / "images", "a", labels.shape)
    write_geojson(tmp_path / "masks", "a", cells_to_geojson(labels, "a", nucleus))
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == GEOJSON and lab_mask.cells == 4
    assert np.array_equal(lab_mask.labels, labels)


# ---- bad input -------------------------------------------------------------------------------

def refused(tmp_path, named, images="images", masks="masks"):
    """read_lab_masks's DataError, checked to name the file; nothing in tmp_path changed. With
    ``masks`` None the masks are looked for beside the images, in Cellpose's layout."""
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    with pytest.raises(DataError) as caught:
        read_lab_masks(tmp_path / images, None if masks is None else tmp_path / masks)
    assert str(named) in str(caught.value)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    return str(caught.value)


def test_a_mask_of_another_size_is_refused(tmp_path):
    write_image(tmp_path / "images", "a")
    mask = write_mask(tmp_path / "masks", "a.png", np.zeros((40, 50), np.uint8))
    assert "size 50x40 differs from its image's 60x40" in refused(tmp_path, mask)


def test_an_image_without_a_mask_is_refused(tmp_path):
    write_image(tmp_path / "images", "a")
    lonely = write_image(tmp_path / "images", "b")
    write_mask(tmp_path / "masks", "a.png", np.zeros(SHAPE, np.uint8))
    assert f"image without mask: {lonely}" in refused(tmp_path, lonely)


def test_empty_folders_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    write_mask(tmp_path / "masks", "a.png", np.zeros(SHAPE, np.uint8))
    assert "no images" in refused(tmp_path, tmp_path / "images")
    write_image(tmp_path / "images", "a")
    (tmp_path / "masks" / "a.png").unlink()
    assert "no masks" in refused(tmp_path, tmp_path / "masks")


def test_a_geojson_that_does_not_parse_is_refused(tmp_path):
    write_image(tmp_path / "images", "a")
    (tmp_path / "masks").mkdir()
    broken = tmp_path / "masks" / "a.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    assert "not valid GeoJSON" in refused(tmp_path, broken)
    broken.write_text('{"type": "Topology"}', encoding="utf-8")
    assert "not a GeoJSON FeatureCollection" in refused(tmp_path, broken)


def test_a_geojson_of_another_image_is_refused(tmp_path):
    write_image(tmp_path / "images", "a")
    path = write_geojson(tmp_path / "masks", "a", [qupath_cell(1000, 1000, 1010, 1010)])
    assert "none of its 1 outline(s) lies inside the 60x40 image" in refused(tmp_path, path)


def test_a_geojson_of_points_only_is_refused_and_an_empty_one_is_background(tmp_path):
    write_image(tmp_path / "images", "a")
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
             "properties": {"objectType": "annotation"}}
    path = write_geojson(tmp_path / "masks", "a", [point])
    assert "its 1 object(s) are points or lines" in refused(tmp_path, path)
    write_geojson(tmp_path / "masks", "a", {"type": "FeatureCollection", "features": []})
    lab_mask = read_one(tmp_path)
    assert lab_mask.cells == 0 and lab_mask.nucleus is None and not lab_mask.labels.any()
    assert summary_line([lab_mask]) == ("Read 1 image with 1 mask (QuPath GeoJSON): 0 cells, "
                                        "1 image of background only")


@pytest.mark.parametrize("values", [(0, 77), (0, 1, 2), (0, 128, 200)])
def test_a_mask_with_unexpected_values_is_refused(tmp_path, values):
    mask = np.zeros(SHAPE, np.uint8)
    for index, value in enumerate(values):
        mask[:, index * 10:(index + 1) * 10] = value
    write_image(tmp_path / "images", "a")
    path = write_mask(tmp_path / "masks", "a.png", mask)
    message = refused(tmp_path, path)
    assert f"values {', '.join(map(str, values))} fit no mask format" in message


def test_a_jpeg_mask_and_a_folder_of_mixed_formats_are_refused(tmp_path):
    write_image(tmp_path / "images", "a")
    jpeg = write_mask(tmp_path / "masks", "a.jpg", np.zeros(SHAPE, np.uint8))
    assert "a JPEG mask" in refused(tmp_path, jpeg)
    jpeg.unlink()
    write_mask(tmp_path / "masks", "a.png", rectangle(2, 2, 12, 12).astype(np.uint8) * 255)
    write_image(tmp_path / "images", "b")
    three_level = write_mask(tmp_path / "masks", "b.png",
                             rectangle(2, 2, 12, 12).astype(np.uint8) * 128)
    message = refused(tmp_path, three_level.name)
    assert "a.png is binary" in message and "b.png is three-level" in message


# ---- Cellpose's layout -----------------------------------------------------------------------

def touching_ids(dtype=np.uint16):
    """Two cells sharing an edge, with ids as a tool wrote them: binary would make them one."""
    values = np.zeros(SHAPE, dtype)
    values[rectangle(5, 5, 30, 25)], values[rectangle(5, 25, 30, 50)] = 7, 300
    return values


def kept_apart(lab_mask):
    left, right = rectangle(5, 5, 30, 25), rectangle(5, 25, 30, 50)
    return lab_mask.cells == 2 and {frozenset(np.unique(lab_mask.labels[part]))
                                    for part in (left, right)} == {frozenset([1]), frozenset([2])}


def write_seg_file(folder, stem, saved):
    """A Cellpose GUI file: a dict pickled by np.save."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}_seg.npy"
    np.save(path, saved, allow_pickle=True)
    return path


def test_masks_beside_their_images_are_read_without_a_mask_folder(tmp_path):
    folder = tmp_path / "smears"
    for stem in ("a", "b", "c"):
        write_image(folder, stem)
    write_mask(folder, "a_masks.png", touching_ids())
    three = np.zeros(SHAPE, np.uint16)
    three[rectangle(2, 2, 10, 10)], three[rectangle(20, 2, 30, 10)] = 1, 2
    three[rectangle(20, 40, 30, 55)] = 3
    write_mask(folder, "b_masks.png", three)
    write_mask(folder, "c_masks.png", rectangle(2, 2, 12, 12).astype(np.uint8))  # 8-bit 0/1
    # What Cellpose writes beside an image besides its mask is no image to train on.
    write_mask(folder, "a_cp_output.png", np.zeros((*SHAPE, 3), np.uint8))
    write_mask(folder, "a_flows.tif", np.zeros((*SHAPE, 3), np.uint8))
    for mask_dir in (None, folder):
        read = read_lab_masks(folder, mask_dir)
        assert [(m.image.name, m.mask.name) for m in read] == [
            ("a.png", "a_masks.png"), ("b.png", "b_masks.png"), ("c.png", "c_masks.png")]
        assert {m.format for m in read} == {CELLPOSE} and all(m.nucleus is None for m in read)
        assert kept_apart(read[0]) and [m.cells for m in read] == [2, 3, 1]
    assert read_lab_masks(folder)[0].labels.dtype == np.int32
    assert summary_line(read) == ("Read 3 images with 3 masks (Cellpose masks: instance labels, "
                                  "one id per cell): 6 cells")


def test_cp_masks_tiffs_and_seg_files_are_read_beside_their_images(tmp_path):
    folder = tmp_path / "smears"
    write_image(folder, "a")
    write_mask(folder, "a_cp_masks.tif", touching_ids())
    write_image(folder, "b")
    outlines = np.zeros(SHAPE, np.uint16)
    outlines[5, 5:25] = 7
    write_seg_file(folder, "b", {"masks": touching_ids(np.uint32), "outlines": outlines,
                                 "filename": str(folder / "b.png"), "ismanual": np.array([True])})
    a, b = read_lab_masks(folder)
    assert (a.mask.name, b.mask.name) == ("a_cp_masks.tif", "b_seg.npy")
    assert a.format == b.format == CELLPOSE and kept_apart(a) and kept_apart(b)
    assert np.array_equal(a.labels, b.labels)


def test_a_mask_folder_of_cellpose_names_is_matched_by_the_stem_before_the_suffix(tmp_path):
    write_image(tmp_path / "images", "a")
    write_image(tmp_path / "images", "b")
    write_image(tmp_path / "images", "c")
    write_mask(tmp_path / "masks", "a_masks.png", touching_ids())
    write_mask(tmp_path / "masks", "b_cp_masks.png", touching_ids())
    write_seg_file(tmp_path / "masks", "c", {"masks": touching_ids()})
    read = read_lab_masks(tmp_path / "images", tmp_path / "masks")
    assert [(m.image.name, m.mask.name) for m in read] == [
        ("a.png", "a_masks.png"), ("b.png", "b_cp_masks.png"), ("c.png", "c_seg.npy")]
    assert all(m.format == CELLPOSE and kept_apart(m) for m in read)


def test_an_image_without_its_mask_in_the_layout_is_refused(tmp_path):
    write_image(tmp_path / "smears", "a")
    write_mask(tmp_path / "smears", "a_masks.png", touching_ids())
    lonely = write_image(tmp_path / "smears", "b")
    message = refused(tmp_path, lonely, images="smears", masks=None)
    assert f"image without mask: {lonely}" in message and "b_masks" not in message
    assert "<name>_masks.png, <name>_cp_masks.png or <name>_seg.npy" in message


def test_two_masks_for_one_image_are_refused_naming_both(tmp_path):
    image = write_image(tmp_path / "smears", "a")
    write_mask(tmp_path / "smears", "a_masks.png", touching_ids())
    write_seg_file(tmp_path / "smears", "a", {"masks": touching_ids()})
    message = refused(tmp_path, image, images="smears", masks=None)
    assert "a_masks.png" in message and "a_seg.npy" in message


@pytest.mark.parametrize("saved", [{"outlines": np.zeros(SHAPE, np.uint16)},
                                   {"masks": np.zeros((3, *SHAPE), np.uint16)}, [1, 2]])
def test_a_seg_file_without_a_2d_masks_array_is_refused(tmp_path, saved):
    write_image(tmp_path / "smears", "a")
    path = write_seg_file(tmp_path / "smears", "a", saved)
    assert 'without a 2-D "masks" array' in refused(tmp_path, path, images="smears", masks=None)


def test_a_layout_folder_without_images_or_without_masks_is_refused(tmp_path):
    write_mask(tmp_path / "smears", "a_masks.png", touching_ids())
    assert "no images" in refused(tmp_path, tmp_path / "smears", images="smears", masks=None)
    (tmp_path / "smears" / "a_masks.png").unlink()
    write_image(tmp_path / "smears", "a")
    assert "no masks beside the images" in refused(tmp_path, tmp_path / "smears",
                                                   images="smears", masks=None)


# ---- a format added to the registry ----------------------------------------------------------

class CommaSeparatedIds(MaskFormat):
    """A toy format: a cell id per pixel, rows of comma-separated numbers."""
    name, description, suffixes = "CSV ids", "CSV ids: one id per cell", (".csv",)

    def read(self, path, height, width):
        return labels_from_ids(np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)), None


def test_a_format_added_to_the_registry_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(mask_formats, "MASK_FORMATS",
                        [*mask_formats.MASK_FORMATS, CommaSeparatedIds()])
    write_image(tmp_path / "images", "a")
    (tmp_path / "masks").mkdir()
    np.savetxt(tmp_path / "masks" / "a.csv", touching_ids(), fmt="%d", delimiter=",")
    lab_mask = read_one(tmp_path)
    assert lab_mask.format == "CSV ids" and kept_apart(lab_mask)
    assert summary_line([lab_mask]) == ("Read 1 image with 1 mask (CSV ids: one id per cell): "
                                        "2 cells")
    (tmp_path / "masks" / "a.csv").rename(tmp_path / "images" / "a.csv")  # beside its image too
    (lab_mask,) = read_lab_masks(tmp_path / "images")
    assert lab_mask.mask.name == "a.csv" and kept_apart(lab_mask)


def test_a_binary_mask_under_cellposes_name_counts_each_region_as_a_cell(tmp_path):
    folder = tmp_path / "lab"
    write_image(folder, "a")
    two_blobs = (rectangle(2, 2, 12, 12) | rectangle(20, 30, 30, 40)).astype(np.uint8) * 255
    write_mask(folder, "a_masks.png", two_blobs)
    (lab_mask,) = read_lab_masks(folder)
    assert lab_mask.cells == 2 and lab_mask.format == CELLPOSE
