"""Plates (issue 7): gatebox's plate reader against the stock RapidOCR pipeline (PP-OCRv4
det + cls + rec, as shipped) on the shared CCPD scenes and LPRNet crops, in the same run.

    .venv/bin/python benchmarks/plates_bench.py      (./scripts/bench installs pyclipper and shapely)
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config import GateboxConfig  # noqa: E402
from edge.models import verify_models  # noqa: E402
from edge.plates.finder import PlateFinder  # noqa: E402
from edge.plates.reader import PlateTextReader  # noqa: E402
from edge.plates.scanner import TEXT, PlateScanner  # noqa: E402
from edge.protocol.plate_grammar import normalise  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data")) / "plates_cn"


def rows(folder: str) -> list[dict[str, str]]:
    with (DATA / folder / "ground_truth.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main() -> None:
    import onnxruntime as ort
    from rapidocr_onnxruntime import RapidOCR

    ort.set_default_logger_severity(3)
    paths = verify_models(GateboxConfig().models_path)
    finder, reader = PlateFinder.from_models(paths), PlateTextReader(paths["plate_text_recogniser"])
    stock = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    scanner = PlateScanner(finder, reader)

    def ours_scene(image):  # the plates found and read as the stage and `gatebox plates read` do
        return list(scanner.scan(image).data[TEXT])

    def stock_scene(image):
        result, _ = stock(image)
        return [normalise(text) for _, text, _ in result or []]

    def ours_crop(image):
        return [reader.read(image).text]

    def stock_crop(image):
        result, _ = stock(image, use_det=False, use_cls=False, use_rec=True)
        return [normalise(text) for text, _ in result or []]

    print(f"{'set':<22} {'pipeline':<10} {'exact':>9} {'ms/image':>9}")
    for folder, pipelines in (("ccpd", (("gatebox", ours_scene), ("RapidOCR", stock_scene))),
                              ("lprnet", (("gatebox", ours_crop), ("RapidOCR", stock_crop)))):  # fmt: skip
        truth = rows(folder)
        images = [cv2.imread(str(DATA / folder / row["file"])) for row in truth]
        for name, read in pipelines:
            read(images[0])  # warm-up
            started = time.perf_counter()
            hits = sum(row["plate"] in read(image) for row, image in zip(truth, images, strict=True))
            ms = (time.perf_counter() - started) / len(images) * 1000
            label = f"{folder} ({len(images)} {'scenes' if folder == 'ccpd' else 'crops'})"
            print(f"{label:<22} {name:<10} {hits:>4}/{len(images):<4} {ms:>9.1f}")


if __name__ == "__main__":
    main()
