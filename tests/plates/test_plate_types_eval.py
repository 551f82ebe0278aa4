"""The plate evaluation set (issue 16, item 3): the GA 36-2018 renderer's invariants (sizes, colours,
character rows, a valid text per type), the scenes' truth, the benchmark's scoring, and a fixed-seed
subset of benchmarks/plates_types.py as a floor for the plate types gatebox reads today."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.plate_synth.plates import PLATE_TYPES, PX_PER_MM, font_path, render
from benchmarks.plate_synth.scenes import SCENE_SIZE, SOURCES, ccpd_background, data_root, make_scene, missing_data
from benchmarks.plates_types import Pipeline, counts_per_type, finder_hit, gatebox_pipeline, iou

pytestmark = pytest.mark.skipif(font_path() is None, reason="no CJK font: apt-get install fonts-wqy-zenhei")

# The texts each type may carry, written from the standard (not from the generator's code).
P = "[京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新]"
L = "[A-HJ-NP-Z]"  # no I, no O
S = "[A-HJ-NP-Z0-9]"
ORDINARY = f"^{P}{L}{S}{{5}}$"
GRAMMAR = {
    "blue": ORDINARY,
    "yellow_single": ORDINARY,
    "yellow_double": ORDINARY,
    "yellow_motorcycle": ORDINARY,
    "green_small": f"^{P}{L}[DF]{S}[0-9]{{4}}$",
    "green_large": f"^{P}{L}[0-9]{{5}}[DF]$",
    "police": f"^{P}{L}{S}{{4}}警$",
    "armed_police": f"^WJ{P}[0-9]{{4}}[0-9JBTSHD]$",
    "armed_police_2007": "^WJ(0[1-9]|[12][0-9]|3[0-2])[0-9]{5}$",
    "armed_police_double": f"^WJ{P}[0-9]{{4}}[0-9JBTSHD]$",
    "military": f"^{L}{{2}}[0-9]{{5}}$",
    "hk_macau": f"^粤Z{S}{{4}}[港澳]$",
    "embassy": "^使[0-9]{6}$",
    "consulate": f"^{P}A[0-9]{{4}}领$",
    "learner": f"^{P}{L}{S}{{4}}学$",
    "trailer": f"^{P}{L}{S}{{4}}挂$",
}
SIZES = {"yellow_double": (440, 220), "armed_police_double": (440, 220), "trailer": (440, 220),
         "yellow_motorcycle": (220, 140), "green_small": (480, 140), "green_large": (480, 140)}  # fmt: skip
COLOURS = {"blue": "blue", "yellow_single": "yellow", "yellow_double": "yellow", "yellow_motorcycle": "yellow",
           "green_small": "green", "green_large": "green", "police": "white", "armed_police": "white",
           "armed_police_2007": "white", "armed_police_double": "white", "military": "white", "hk_macau": "black",
           "embassy": "black", "consulate": "black", "learner": "yellow", "trailer": "yellow"}  # fmt: skip
# Rows (mm from the top) that must hold characters, and a band between or above them that must not.
SINGLE_BANDS: dict[str, list[tuple[int, int]]] = {"ink": [(30, 110)], "blank": [(6, 20)]}
DOUBLE_BANDS: dict[str, list[tuple[int, int]]] = {"ink": [(20, 70), (95, 195)], "blank": [(78, 88)]}
MOTO_BANDS: dict[str, list[tuple[int, int]]] = {"ink": [(14, 44), (60, 126)], "blank": [(49, 55)]}
# Character boxes (x, y, w, h mm) printed red: the suffix or prefix characters, WJ.
MmBox = tuple[float, float, float, float]
SUFFIX_BOX: MmBox = (379.5, 25, 45, 90)
FIRST_BOX: MmBox = (15.5, 25, 45, 90)
WJ_BOXES: list[MmBox] = [(15.5, 25, 45, 90), (72.5, 25, 45, 90)]
RED: dict[str, list[MmBox]] = {
       "police": [SUFFIX_BOX], "consulate": [SUFFIX_BOX], "embassy": [FIRST_BOX], "military": [FIRST_BOX],
       "armed_police": WJ_BOXES, "armed_police_2007": WJ_BOXES,
       "armed_police_double": [(105, 15, 70, 60), (190, 15, 70, 60)]}  # fmt: skip
NOT_RED: dict[str, list[MmBox]] = {
    "hk_macau": [SUFFIX_BOX],
    "blue": [SUFFIX_BOX, FIRST_BOX],
    "trailer": [(347.5, 90, 65, 110)],
}


def colour_class(bgr: np.ndarray) -> str:
    """A plate background's colour class from its mean pixel (the test's own, not the reader's)."""
    hue, saturation, value = cv2.cvtColor(bgr.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2HSV)[0, 0]
    if saturation < 60:
        return "white" if value > 150 else "black" if value < 70 else "grey"
    return "blue" if 100 <= hue <= 130 else "yellow" if 15 <= hue < 35 else "green" if 35 <= hue < 95 else "other"


def mm(value: float) -> int:
    return round(value * PX_PER_MM)


@pytest.mark.parametrize("kind", list(PLATE_TYPES))
def test_rendered_plates_have_the_standard_size_colour_rows_and_text(kind: str) -> None:
    width_mm, height_mm = SIZES.get(kind, (440, 140))
    bands = {"yellow_motorcycle": MOTO_BANDS}.get(kind, DOUBLE_BANDS if height_mm == 220 else SINGLE_BANDS)
    rng = np.random.default_rng(7)
    for _ in range(6):
        plate = render(kind, rng)
        assert re.match(GRAMMAR[kind], plate.text), (kind, plate.text)
        assert plate.image.shape == (mm(height_mm), mm(width_mm), 3) and plate.size_mm == (width_mm, height_mm)
        assert plate.colour == COLOURS[kind] and plate.rows == (2 if bands is not SINGLE_BANDS else 1)
        # The background, in the bottom margin below the characters (new-energy plates: the gradient's green end).
        margin = plate.image[mm(height_mm - 9) : mm(height_mm - 6), mm(0.4 * width_mm) : mm(0.6 * width_mm)]
        assert colour_class(margin.reshape(-1, 3).mean(axis=0)) == COLOURS[kind], kind
        # Characters fill their rows, and nothing but the rivets sits in the margins and between rows.
        columns = np.ones(mm(width_mm), bool)
        columns[: mm(12)] = columns[-mm(12) :] = False
        for rivet in (0.22, 0.78):
            columns[mm(rivet * width_mm - 6) : mm(rivet * width_mm + 6)] = False
        if kind == "green_large":
            columns[: mm(0.3 * width_mm)] = False  # the yellow part: its edge with the green is no character
        spread = plate.image[:, columns].astype(np.float32).std(axis=1).max(axis=1)  # per row
        for top, bottom in bands["ink"]:
            assert (spread[mm(top) : mm(bottom)] > 40).mean() > 0.9, (kind, plate.text, top, bottom)
        for top, bottom in bands["blank"]:
            assert spread[mm(top) : mm(bottom)].max() < 12, (kind, plate.text, top, bottom)
        for boxes, red in ((RED.get(kind, []), True), (NOT_RED.get(kind, []), False)):
            for x, y, w, h in boxes:
                b, g, r = np.moveaxis(plate.image[mm(y) : mm(y + h), mm(x) : mm(x + w)].astype(int), -1, 0)
                share = ((r > 150) & (g < 90) & (b < 90)).mean()
                assert (share > 0.08) == red, (kind, plate.text, (x, y), share)
    assert np.array_equal(render(kind, np.random.default_rng(3)).image, render(kind, np.random.default_rng(3)).image)


def test_finder_hit_and_iou() -> None:
    corners = np.array([[100, 100], [200, 100], [200, 140], [100, 140]], np.float32)
    assert iou((100, 100, 200, 140), (100, 100, 200, 140)) == 1.0
    assert finder_hit((110, 105, 210, 145), corners)  # shifted a little
    assert finder_hit((100, 120, 200, 140), corners)  # one row of a double-row plate: IoU 0.5
    assert not finder_hit((100, 130, 200, 140), corners)  # a sliver: IoU 0.25
    assert finder_hit((80, 80, 230, 160), corners)  # loose, holding every corner (3x the area)
    assert not finder_hit((0, 0, 400, 300), corners)  # holds every corner, but half the scene
    assert not finder_hit((300, 300, 400, 340), corners)


@pytest.fixture(scope="module")
def data() -> Path:
    problem = missing_data()
    if problem:
        pytest.skip(problem)
    return data_root()


def test_scenes_are_deterministic_720p_and_their_corners_hold_the_plate(data: Path) -> None:
    for index, source in enumerate(SOURCES):
        scene = make_scene("police", index, seed=5, root=data)
        again = make_scene("police", index, seed=5, root=data)
        assert np.array_equal(scene.image, again.image) and scene.source == again.source
        assert scene.scale == source
        height, width = scene.image.shape[:2]
        assert (width, height) == (SCENE_SIZE if source != "ccpd" else (720, 720))
        x1, y1, x2, y2 = scene.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        if source == "video_far":
            assert 40 <= x2 - x1 <= 95, scene.box  # a car at a distance: 60-90 px, less when turned
        truth = scene.truth()
        corners = truth["corners"]
        assert isinstance(corners, list)
        assert truth["text"] == scene.text and len(corners) == 4 and truth["colour"] == "white"
    assert make_scene("police", 0, seed=6, root=data).text != make_scene("police", 0, seed=5, root=data).text


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return gatebox_pipeline()


# Today's figures (edge.plates' finder and reader before issue 16's finder and reader work; the full
# run is docs/bench/plates_types.json) on the first SUBSET scenes, seed 0, of each type gatebox reads
# today: counts out of SUBSET, a floor that a change may raise and must not lower. The types not read
# today (double-row, motorcycle, WJ, military, embassy, consulate, trailer; large new-energy mostly)
# get their floors with the work that reads them. Police plates: text only (colour is the known weak spot).
SUBSET = 6
FLOORS: dict[str, dict[str, int]] = {
    "blue": {"finder": 6, "reader": 4, "end_to_end": 4, "colour": 6},
    "yellow_single": {"finder": 6, "reader": 5, "end_to_end": 5, "colour": 6},
    "green_small": {"finder": 5, "reader": 6, "end_to_end": 5, "colour": 6},
    "hk_macau": {"finder": 5, "reader": 4, "end_to_end": 4, "colour": 5},
    "police": {"finder": 5, "reader": 5, "end_to_end": 5},
    "learner": {"finder": 6, "reader": 4, "end_to_end": 4, "colour": 6},
}


@pytest.mark.slow  # real models over 36 scenes: seconds
def test_plate_types_read_today_do_not_regress(data: Path, pipeline: Pipeline) -> None:
    measured = counts_per_type(FLOORS, SUBSET, pipeline, data)
    print("\n" + "\n".join(f"{kind}: {counts}" for kind, counts in measured.items()))
    for kind, floors in FLOORS.items():
        for metric, floor in floors.items():
            assert measured[kind][metric] >= floor, (kind, metric, measured[kind])


@pytest.mark.slow  # real models on real scenes
def test_the_real_plate_of_a_ccpd_photo_is_painted_out(data: Path, pipeline: Pipeline) -> None:
    """The rendered plate replaces the photo's own: the photo is read, its painted-out background is not."""
    with (data / "plates_cn" / "ccpd" / "ground_truth.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for index, row in enumerate(rows):
        photo = cv2.imread(str(data / "plates_cn" / "ccpd" / row["file"]))
        background, _ = ccpd_background(data, index)
        assert row["plate"] in {p.text for p in pipeline.scene(photo) if p.valid}, row
        assert row["plate"] not in {p.text for p in pipeline.scene(background.copy())}, row
