"""Every standard plate type found and read (issue 16, items 1, 2 and 4): the real scenes and crops
still read as before (CCPD 8/8, LPRNet >= 98 %, HyperLPR incl. yellow and green with their colours),
the SSD's boxes no longer depend on the image size it saw first, the second proposal path finds what
the SSD misses, the colour of every type under dim light and casts, and a floor per plate type on a
fixed-seed subset of the evaluation set (benchmarks/plates_types.py)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.plate_synth.plates import PLATE_TYPES, font_path, render
from benchmarks.plate_synth.scenes import data_root, make_scene, missing_data
from benchmarks.plates_types import Pipeline, counts_per_type, finder_hit, gatebox_pipeline
from edge.config import GateboxConfig
from edge.models import verify_models
from edge.plates.finder import PlateFinder
from edge.plates.reader import PlateTextReader, plate_colour
from edge.plates.scanner import COLOUR, KIND, TEXT, PlateScanner

needs_font = pytest.mark.skipif(font_path() is None, reason="no CJK font: apt-get install fonts-wqy-zenhei")


@pytest.fixture(scope="module")
def paths() -> dict[str, Path]:
    return verify_models(GateboxConfig().models_path)


@pytest.fixture(scope="module")
def reader(paths: dict[str, Path]) -> PlateTextReader:
    return PlateTextReader(paths["plate_text_recogniser"])


@pytest.fixture(scope="module")
def scanner(paths: dict[str, Path], reader: PlateTextReader) -> PlateScanner:
    return PlateScanner(PlateFinder.from_models(paths), reader)


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "ground_truth.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- the real images


@pytest.mark.slow  # real models on real scenes: seconds
def test_ccpd_scenes_all_found_and_read_where_the_plate_is(scanner: PlateScanner, shared_data: Path) -> None:
    folder = shared_data / "plates_cn" / "ccpd"
    for row in rows(folder):
        plates = scanner.scan(cv2.imread(str(folder / row["file"])))
        texts = list(plates.data[TEXT])
        assert row["plate"] in texts, (row["file"], texts)
        x1, y1, x2, y2 = plates.xyxy[texts.index(row["plate"])]
        tx1, ty1, tx2, ty2 = (int(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert tx1 - (tx2 - tx1) / 2 <= (x1 + x2) / 2 <= tx2 + (tx2 - tx1) / 2, (row["file"], plates.xyxy)
        assert ty1 - (ty2 - ty1) / 2 <= (y1 + y2) / 2 <= ty2 + (ty2 - ty1) / 2, (row["file"], plates.xyxy)
        assert plates.data[COLOUR][texts.index(row["plate"])] == "blue"
        assert plates.data[KIND][texts.index(row["plate"])] == "ordinary"


@pytest.mark.slow  # 500 real crops: about 10 s
def test_lprnet_crops_read_at_least_98_percent(reader: PlateTextReader, shared_data: Path) -> None:
    folder = shared_data / "plates_cn" / "lprnet"
    truth = rows(folder)
    right = sum(reader.read(cv2.imread(str(folder / row["file"]))).text == row["plate"] for row in truth)
    assert right / len(truth) >= 0.98, f"{right}/{len(truth)}"


def test_hyperlpr_crops_read_with_their_colour(reader: PlateTextReader, shared_data: Path) -> None:
    folder = shared_data / "plates_cn" / "hyperlpr"
    for row in rows(folder):
        read = reader.read_with_colour(cv2.imread(str(folder / row["file"])))
        assert (read.text, read.colour, read.valid) == (row["plate"], row["kind"].split()[0], True), row


@pytest.mark.slow  # real models on real scenes
def test_ssd_boxes_whatever_size_it_saw_before(paths: dict[str, Path], shared_data: Path) -> None:
    """cv2.dnn computes the SSD's prior boxes for the first input shape a net runs; a finder that had seen
    one size used to misplace boxes by 10-20 px in images of another (the stage's windows vary)."""
    folder = shared_data / "plates_cn" / "ccpd"
    scenes = [cv2.imread(str(folder / row["file"])) for row in rows(folder)]
    cuts = [scene[100 + 20 * i : 1000 - 10 * i, : 600 + 15 * i] for i, scene in enumerate(scenes)]  # other sizes
    seasoned = PlateFinder.from_models(paths)
    for scene, cut in zip(scenes, cuts, strict=True):
        seasoned.find(scene)
        fresh = PlateFinder.from_models(paths).find(cut).xyxy
        again = seasoned.find(cut).xyxy
        assert fresh.shape == again.shape and np.abs(fresh - again).max(initial=0) <= 1, (fresh, again)


# ---------------------------------------------------------------- the evaluation set

SUBSET = 6  # scenes per type, seed 0 (the first of benchmarks/plates_types.py's)


@pytest.fixture(scope="module")
def data() -> Path:
    problem = missing_data()
    if problem:
        pytest.skip(problem)
    return data_root()


@needs_font
@pytest.mark.slow  # real models on rendered scenes
@pytest.mark.parametrize(("kind", "index"), [("military", 2), ("police", 2), ("green_small", 4), ("military", 3)])
def test_the_second_path_finds_and_reads_what_the_ssd_misses(
    paths: dict[str, Path], scanner: PlateScanner, data: Path, kind: str, index: int
) -> None:
    scene = make_scene(kind, index, seed=0, root=data)
    ssd = PlateFinder.from_models(paths).find(scene.image)
    assert not any(finder_hit(box, scene.corners) for box in ssd.xyxy.tolist())  # the SSD alone misses it
    plates = scanner.scan(scene.image)
    assert scene.text in list(plates.data[TEXT]), (kind, index, list(plates.data[TEXT]))


@needs_font
@pytest.mark.slow  # real models on large photos
@pytest.mark.parametrize(("kind", "index"), [("green_small", 11), ("blue", 11), ("police", 3)])
def test_a_car_at_a_distance_in_a_large_photo_is_read_by_a_thorough_scanner(
    paths: dict[str, Path], reader: PlateTextReader, data: Path, kind: str, index: int
) -> None:
    """`gatebox plates read` on a street photo (4800 x 2700, the plate 150-225 px wide): the text lines
    searched at 640 px miss it; the thorough scanner's last search at 1600 px reads it."""
    scene = make_scene(kind, index, seed=2, root=data)
    photo = cv2.resize(scene.image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)
    photo = cv2.copyMakeBorder(photo, 0, 900, 0, 1600, cv2.BORDER_REFLECT)
    finder = PlateFinder.from_models(paths)
    assert scene.text not in list(PlateScanner(finder, reader).scan(photo).data[TEXT])
    assert scene.text in list(PlateScanner(finder, reader, thorough=True).scan(photo).data[TEXT])


# Colour under the light a gate camera sees: as drawn, dim (a white plate at dusk was reported black),
# night gain, and the camera's white balance off by 10 % a channel either way; always with the sensor's
# noise, a white balance a few percent off, and JPEG. (Off by 15 %, black plates may be told blue:
# dark pixels under a cast look coloured; the evaluation set's figures count those.)
CONDITIONS = {
    "daylight": np.array([1.0, 1.0, 1.0]),
    "dim": np.array([0.35, 0.35, 0.35]),
    "night": np.array([0.6, 0.6, 0.6]),
    "warm": np.array([0.9, 1.0, 1.1]),  # BGR: less blue, more red
    "cool": np.array([1.1, 1.0, 0.9]),
}


def as_a_camera_sees(image: np.ndarray, gain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    balance = rng.uniform(0.95, 1.05, 3)  # no camera's white balance is exact
    lit = np.clip(image * gain * balance + rng.normal(0, 2.5, image.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", lit, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


@needs_font
@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("kind", list(PLATE_TYPES))
def test_colour_of_every_plate_type(kind: str, condition: str) -> None:
    rng = np.random.default_rng(11)
    for _ in range(3):
        plate = render(kind, rng)
        size = (136, 36) if plate.rows == 1 else (136, 68 if plate.size_mm[0] == 440 else 87)
        image = cv2.resize(plate.image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        assert plate_colour(as_a_camera_sees(image, CONDITIONS[condition], rng)) == plate.colour, (kind, condition)


def test_colour_of_a_huge_crop_is_told_quickly() -> None:
    """`gatebox plates read --crop` on a 4K image: the colour's blur scales with the crop (it took 90 s)."""
    huge = np.random.default_rng(0).integers(0, 255, (2160, 3840, 3), dtype=np.uint8)
    started = time.process_time()
    plate_colour(huge)
    assert time.process_time() - started < 2.0


# Found (finder), read from the true crop (reader), found and read (end_to_end) and colour, out of
# SUBSET, with this finder, scanner and reader (the full run: docs/bench/plates_types.json).
# A floor that a change may raise and must not lower.
FLOORS: dict[str, dict[str, int]] = {
    "blue": {"finder": 6, "reader": 4, "end_to_end": 4, "colour": 6},
    "yellow_single": {"finder": 6, "reader": 5, "end_to_end": 6, "colour": 6},
    "yellow_double": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
    "yellow_motorcycle": {"finder": 4, "reader": 2, "end_to_end": 2, "colour": 5},
    "green_small": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
    "green_large": {"finder": 5, "reader": 4, "end_to_end": 3, "colour": 6},
    "police": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
    "armed_police": {"finder": 6, "reader": 2, "end_to_end": 3, "colour": 6},
    "armed_police_2007": {"finder": 6, "reader": 3, "end_to_end": 3, "colour": 6},
    "armed_police_double": {"finder": 6, "reader": 5, "end_to_end": 3, "colour": 6},
    "military": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
    "hk_macau": {"finder": 5, "reader": 4, "end_to_end": 4, "colour": 5},
    "embassy": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
    "consulate": {"finder": 6, "reader": 5, "end_to_end": 5, "colour": 5},
    "learner": {"finder": 6, "reader": 4, "end_to_end": 4, "colour": 6},
    "trailer": {"finder": 6, "reader": 6, "end_to_end": 6, "colour": 6},
}


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return gatebox_pipeline()


@needs_font
@pytest.mark.slow  # real models over 96 scenes: a minute
def test_every_plate_type_found_and_read(data: Path, pipeline: Pipeline) -> None:
    measured = counts_per_type(FLOORS, SUBSET, pipeline, data)
    print("\n" + "\n".join(f"{kind}: {counts}" for kind, counts in measured.items()))
    below = {kind: {k: (measured[kind][k], floor) for k, floor in floors.items() if measured[kind][k] < floor}
             for kind, floors in FLOORS.items()}  # fmt: skip
    assert not any(below.values()), {kind: b for kind, b in below.items() if b}
