"""Plate reading (issue 7, first part): the shared LPRNet and HyperLPR crops read with PP-OCRv4
restricted to the plate alphabet and checked against the plate grammar; the CCPD scenes found,
rectified and read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import GateboxConfig
from edge.models import verify_models
from edge.plates.reader import PlateTextReader
from edge.protocol.plate_grammar import normalise, plate_kind, repair
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def reader() -> PlateTextReader:
    return PlateTextReader(verify_models(GateboxConfig().models_path)["plate_text_recogniser"])


@pytest.mark.slow  # ~10 s: every real plate crop
@pytest.mark.parametrize(("folder", "floor"), [("lprnet", 0.95), ("hyperlpr", 1.0)])
def test_exact_match_rate_on_real_crops(reader: PlateTextReader, shared_data: Path, folder: str, floor: float) -> None:
    root = shared_data / "plates_cn" / folder
    with (root / "ground_truth.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    right = sum(reader.read(cv2.imread(str(root / row["file"]))).text == row["plate"] for row in rows)
    print(f"\n{folder}: {right}/{len(rows)} plates read exactly ({right / len(rows):.1%})")
    assert right / len(rows) >= floor


@pytest.mark.parametrize(
    ("text", "kind"),
    [("京A12345", "ordinary"), ("粤B1234学", "learner"), ("皖KD01833", "new_energy"), ("沪AF12345", "new_energy"),
     ("京A1234", None), ("京AI2345", None), ("XA12345", None), ("京A123456", None)],
)  # fmt: skip
def test_grammar(text: str, kind: str | None) -> None:
    assert plate_kind(text) == kind


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [("皖429C52", "皖A29C52"), ("皖AAIR81", "皖AA1R81"), ("京A12345", "京A12345"), ("京·A 123-45", "京A12345")],
)
def test_normalise_and_repair(raw: str, fixed: str) -> None:
    assert repair(normalise(raw)) == fixed


@pytest.mark.slow  # the CLI
def test_scenes_are_found_rectified_and_read(shared_data: Path) -> None:
    root = shared_data / "plates_cn" / "ccpd"
    with (root / "ground_truth.csv").open(encoding="utf-8") as f:
        truth = {row["file"]: row for row in csv.DictReader(f)}
    result = run_cli("plates", "read", *sorted(root / name for name in truth), timeout=120)
    assert result.returncode == 0, result.stderr
    reads = [json.loads(line) for line in result.stdout.splitlines()]
    right = 0
    for name, row in truth.items():
        mine = [r for r in reads if r["file"].endswith(name)]
        hit = [r for r in mine if r["plate"] == row["plate"]]
        right += bool(hit)
        if hit:  # and where the ground truth says the plate is
            x1, y1, x2, y2 = hit[0]["box"]
            tx1, ty1, tx2, ty2 = (int(row[k]) for k in ("x1", "y1", "x2", "y2"))
            margin_x, margin_y = (tx2 - tx1) / 2, (ty2 - ty1) / 2
            assert tx1 - margin_x <= (x1 + x2) / 2 <= tx2 + margin_x, (name, hit[0]["box"], row)
            assert ty1 - margin_y <= (y1 + y2) / 2 <= ty2 + margin_y, (name, hit[0]["box"], row)
    print(f"\nccpd scenes: {right}/{len(truth)} plates found and read exactly")
    assert right >= 7


@pytest.mark.slow  # the CLI
def test_cli_reads_crops_and_survives_bad_images(tmp_path: Path, shared_data: Path) -> None:
    crop = shared_data / "plates_cn" / "hyperlpr" / "rec_crop_0.jpg"
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(cv2.imread(str(crop)), cv2.COLOR_BGR2GRAY))
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((2, 3, 3), np.uint8))
    huge = tmp_path / "huge.jpg"
    cv2.imwrite(str(huge), np.random.default_rng(0).integers(0, 255, (2160, 3840, 3), dtype=np.uint8))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    result = run_cli("plates", "read", "--crop", crop, gray, tiny, huge, garbage, timeout=120)
    scenes = run_cli("plates", "read", gray, tiny, huge, garbage, timeout=120)  # scene mode on the same junk
    assert scenes.returncode == 2 and "Traceback" not in scenes.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert lines[0]["plate"] == "津B6H920" and lines[0]["valid"] and lines[0]["kind"] == "ordinary"
    assert lines[0]["colour"] == "blue" and lines[1]["colour"] is None  # no colour in a grey image
    assert lines[1]["plate"] == "津B6H920"  # grayscale reads the same
    assert not lines[2]["valid"] and not lines[3]["valid"]  # nothing plate-like in noise
    assert lines[4] == {"file": str(garbage), "error": "cannot read image"}


def double_row(plate: np.ndarray, cut: float = 0.30) -> np.ndarray:
    """A double-row plate made from a real single-row one: province and letter above, serial below."""
    h, w = plate.shape[:2]
    top = cv2.resize(plate[:, : int(cut * w)], (w // 2, h))
    canvas = np.full((3 * h, w, 3), 200, np.uint8)
    canvas[:h, (w - w // 2) // 2 : (w - w // 2) // 2 + w // 2] = top
    canvas[h:] = cv2.resize(plate[:, int(cut * w) :], (w, 2 * h))
    return canvas


@pytest.mark.slow  # ~6 s: every real plate crop
def test_double_row_plates_are_split_and_joined(reader: PlateTextReader, shared_data: Path) -> None:
    root = shared_data / "plates_cn" / "lprnet"
    with (root / "ground_truth.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:100]
    right = sum(reader.read(double_row(cv2.imread(str(root / row["file"])))).text == row["plate"] for row in rows)
    print(f"\ndouble-row plates composed from lprnet crops: {right}/{len(rows)} read exactly")
    assert right >= 75


def test_plate_colour_matches_the_labels(shared_data: Path) -> None:
    from edge.plates.reader import plate_colour

    root = shared_data / "plates_cn" / "hyperlpr"
    with (root / "ground_truth.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            assert plate_colour(cv2.imread(str(root / row["file"]))) == row["kind"].split()[0], row
