"""Plates per type (issue 16, item 3): every GA 36-2018 plate type, rendered and warped onto real car
scenes (benchmarks/plate_synth), found and read by gatebox's plate finder and reader; plus the real
images of ../shared/data/plates_cn as their own rows.

Per type, on --per-type scenes (fixed seed):

* finder: the share of scenes where a proposal overlaps the true plate (IoU >= 0.3 with the box of its
  corners, or a box holding all four corners that is at most 4x the plate's box);
* IoU>=.5: the share where a proposal overlaps the plate's box by half (a proposal that holds one row
  of a double-row plate is found at IoU 0.3, and its crop misses the other row);
* reader: the share read exactly from the true crop (the scene rectified from the true corners, the
  shape the finder cuts: 136 x 36 for a single-row plate, the plate's own aspect for a double-row
  one) - the reader measured apart from the finder, valid or not;
* valid: read exactly from the true crop and passing the plate grammar, as the gate requires;
* end-to-end: the share where some proposal's read is exactly the plate and valid (the stage and
  `gatebox plates read` drop reads the grammar refuses);
* colour: the share whose colour (read_with_colour on the true crop) is the plate's;
* ms/scene: the median CPU time to find and read everything in one scene (finder + reads), on one
  thread (process CPU time, not the wall clock, which on a shared machine counts other work too).

    .venv/bin/python benchmarks/plates_types.py [--per-type 20] [--seed 0] [--types blue,police] [--dump DIR]

Writes docs/bench/plates_types.json (every scene's result too) and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.plate_synth.plates import PLATE_TYPES, font_path  # noqa: E402
from benchmarks.plate_synth.scenes import Scene, data_root, make_scene, missing_data, rectify, scenes  # noqa: E402

Image = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]
HIT_IOU = 0.3
SINGLE_ROW_CROP = (136, 36)  # what edge.plates.finder cuts a plate to


@dataclass(frozen=True)
class Proposal:
    box: Box  # xyxy in the scene
    text: str
    colour: str | None
    valid: bool  # the read passes the plate grammar (only valid reads are plates, as in the stage and CLI)


@dataclass(frozen=True)
class Pipeline:
    """The plate code under test, behind two calls: find-and-read a scene, read a crop."""

    scene: Callable[[Image], list[Proposal]]
    crop: Callable[[Image], tuple[str, str | None, bool]]  # text, colour, valid


def gatebox_pipeline() -> Pipeline:
    """Today's edge.plates finder and reader, loaded as edge/ loads them."""
    import onnxruntime as ort

    from edge.config import GateboxConfig
    from edge.models import verify_models
    from edge.plates.finder import PlateFinder
    from edge.plates.reader import PlateTextReader
    from edge.plates.scanner import COLOUR, TEXT, VALID, PlateScanner

    ort.set_default_logger_severity(3)
    paths = verify_models(GateboxConfig().models_path)
    reader = PlateTextReader(paths["plate_text_recogniser"])
    # One scanner for every scene size, as a box runs it (the finder keeps an SSD net per input shape).
    scanner = PlateScanner(PlateFinder.from_models(paths), reader)

    def scene(image: Image) -> list[Proposal]:
        plates = scanner.read_proposals(image)
        return [Proposal((x1, y1, x2, y2), str(text), colour, bool(valid))
                for (x1, y1, x2, y2), text, colour, valid in zip(plates.xyxy.astype(int).tolist(), plates.data[TEXT],
                                                                  plates.data[COLOUR], plates.data[VALID],
                                                                  strict=True)]  # fmt: skip

    def crop(image: Image) -> tuple[str, str | None, bool]:
        read = reader.read_with_colour(image)
        return read.text, read.colour, read.valid

    return Pipeline(scene, crop)


# ---------------------------------------------------------------- scoring


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def finder_hit(box: Sequence[float], corners: npt.NDArray[np.float32]) -> bool:
    """A proposal found the plate: it overlaps the plate's box, or holds all its corners without being
    much bigger (a loose box around a double-row plate still leads to it)."""
    x1, y1 = corners.min(axis=0)
    x2, y2 = corners.max(axis=0)
    truth = (float(x1), float(y1), float(x2), float(y2))
    if iou(box, truth) >= HIT_IOU:
        return True
    holds = all(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in corners)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return holds and area <= 4 * (x2 - x1) * (y2 - y1)


def crop_size(rows: int, size_mm: tuple[int, int]) -> tuple[int, int]:
    """The true crop's size: the finder's 136 x 36 for single-row plates, the plate's aspect for double-row."""
    if rows == 1:
        return SINGLE_ROW_CROP
    width = SINGLE_ROW_CROP[0]
    return width, round(width * size_mm[1] / size_mm[0])


@dataclass(frozen=True)
class SceneResult:
    type: str
    source: str
    scale: str
    effects: list[str]
    text: str
    colour: str | None
    found: bool | None  # None: no scene (a crop)
    best_iou: float | None
    reads: list[str]  # every proposal's read, "?" after one the grammar refuses
    end_to_end: bool | None  # a valid read of some proposal is the plate
    crop_read: str
    crop_valid: bool
    crop_colour: str | None
    ms: float | None  # CPU time finding and reading the scene


def evaluate_scene(scene: Scene, pipeline: Pipeline) -> SceneResult:
    # CPU time of this process (one thread): on a shared machine the wall clock counts the neighbours too.
    started = time.process_time()
    proposals = pipeline.scene(scene.image)
    ms = (time.process_time() - started) * 1000
    crop = rectify(scene.image, scene.corners, crop_size(scene.rows, PLATE_TYPES[scene.kind].size_mm))
    text, colour, valid = pipeline.crop(crop)
    x1, y1 = scene.corners.min(axis=0)
    x2, y2 = scene.corners.max(axis=0)
    truth_box = (float(x1), float(y1), float(x2), float(y2))
    return SceneResult(scene.kind, scene.source, scene.scale, list(scene.effects), scene.text, scene.colour,
                       any(finder_hit(p.box, scene.corners) for p in proposals),
                       round(max((iou(p.box, truth_box) for p in proposals), default=0.0), 3),
                       [p.text + ("" if p.valid else "?") for p in proposals],
                       scene.text in {p.text for p in proposals if p.valid}, text, valid, colour,
                       round(ms, 2))  # fmt: skip


def counts_per_type(kinds: Iterable[str], per_type: int, pipeline: Pipeline, root: Path) -> dict[str, dict[str, int]]:
    """For the first `per_type` scenes (seed 0) of each kind: how many were found, read from the true crop,
    read end to end, and told the right colour (the regression tests' floors are on these)."""
    counts = {}
    for kind in kinds:
        results = [evaluate_scene(make_scene(kind, index, seed=0, root=root), pipeline) for index in range(per_type)]
        counts[kind] = {"finder": sum(bool(r.found) for r in results),
                        "reader": sum(r.crop_read == r.text for r in results),
                        "end_to_end": sum(bool(r.end_to_end) for r in results),
                        "colour": sum(r.crop_colour == r.colour for r in results)}  # fmt: skip
    return counts


def _share(values: Iterable[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


def summarise(results: Sequence[SceneResult]) -> dict[str, object]:
    times = [r.ms for r in results if r.ms is not None]
    coloured = [r for r in results if r.colour is not None]
    return {
        "n": len(results),
        "finder_recall": _share(r.found for r in results),
        "finder_iou50": _share(None if r.best_iou is None else r.best_iou >= 0.5 for r in results),
        "reader_exact": _share(r.crop_read == r.text for r in results),
        "reader_exact_and_valid": _share(r.crop_read == r.text and r.crop_valid for r in results),
        "end_to_end_exact": _share(r.end_to_end for r in results),
        "colour_accuracy": _share(r.crop_colour == r.colour for r in coloured) if coloured else None,
        "ms_per_scene_median": round(statistics.median(times), 1) if times else None,
        "ms_per_scene_mean": round(statistics.fmean(times), 1) if times else None,
    }


# ---------------------------------------------------------------- the real images


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "ground_truth.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def real_results(pipeline: Pipeline, root: Path) -> dict[str, list[SceneResult]]:
    """The shared CCPD scenes (blue plates, ground-truth boxes), LPRNet crops and HyperLPR crops."""
    out: dict[str, list[SceneResult]] = {}
    folder = root / "plates_cn" / "ccpd"
    ccpd = []
    for row in _rows(folder):
        image = cv2.imread(str(folder / row["file"]))
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
        scene = Scene(image, "blue", row["plate"], "blue", 1, corners, row["file"], "ccpd", ())
        ccpd.append(evaluate_scene(scene, pipeline))
    out["real: CCPD scenes"] = ccpd
    for name, sub, colour_of in (("real: LPRNet crops", "lprnet", None),
                                 ("real: HyperLPR crops", "hyperlpr", lambda row: row["kind"].split()[0])):  # fmt: skip
        folder = root / "plates_cn" / sub
        results = []
        for row in _rows(folder):
            text, colour, valid = pipeline.crop(cv2.imread(str(folder / row["file"])))
            results.append(SceneResult("real", row["file"], "crop", [], row["plate"],
                                       colour_of(row) if colour_of else None, None, None, [], None, text, valid,
                                       colour, None))  # fmt: skip
        out[name] = results
    return out


# ---------------------------------------------------------------- report

COLUMNS = (
    ("finder_recall", "finder"),
    ("finder_iou50", "IoU>=.5"),
    ("reader_exact", "reader"),
    ("reader_exact_and_valid", "valid"),
    ("end_to_end_exact", "end-to-end"),
    ("colour_accuracy", "colour"),
)


def table(rows: dict[str, dict[str, object]]) -> str:
    def cell(value: object) -> str:
        return "-" if value is None else f"{value:.0%}" if isinstance(value, float) else str(value)

    head = f"{'type':<26} {'n':>4} " + " ".join(f"{title:>10}" for _, title in COLUMNS) + f" {'ms/scene':>9}"
    lines = [head, "-" * len(head)]
    for name, summary in rows.items():
        ms = summary["ms_per_scene_median"]
        lines.append(f"{name:<26} {summary['n']:>4} " + " ".join(f"{cell(summary[k]):>10}" for k, _ in COLUMNS)
                     + f" {'-' if ms is None else f'{ms:.1f}':>9}")  # fmt: skip
    return "\n".join(lines)


def run(per_type: int, seed: int, kinds: tuple[str, ...], pipeline: Pipeline, root: Path,
        with_real: bool = True) -> dict[str, object]:  # fmt: skip
    results = [evaluate_scene(scene, pipeline) for scene in scenes(per_type, seed, kinds, root)]
    by_type = {kind: summarise([r for r in results if r.type == kind]) for kind in kinds}
    by_scale = {f"all types, {scale}": summarise([r for r in results if r.scale == scale])
                for scale in ("ccpd", "video_near", "video_far")}  # fmt: skip
    real = real_results(pipeline, root) if with_real else {}
    return {
        "schema": "gatebox.bench.plates_types/1",
        "per_type": per_type,
        "seed": seed,
        "font": str(font_path()),
        "types": by_type,
        "descriptions": {kind: PLATE_TYPES[kind].description for kind in kinds},
        "scales": by_scale,
        "real": {name: summarise(rows) for name, rows in real.items()},
        "scenes": [asdict(r) for r in results],
        "real_items": {name: [asdict(r) for r in rows] for name, rows in real.items()},
    }


def dump(per_type: int, seed: int, kinds: tuple[str, ...], root: Path, out: Path) -> None:
    """Write the scenes as JPEG files and their truth as truth.jsonl, to look at."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "truth.jsonl").open("w", encoding="utf-8") as truth:
        for number, scene in enumerate(scenes(per_type, seed, kinds, root)):
            name = f"{scene.kind}_{number % per_type:03d}.jpg"
            cv2.imwrite(str(out / name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            truth.write(json.dumps({"file": name, **scene.truth()}, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-type", type=int, default=20, help="scenes per plate type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--types", default=",".join(PLATE_TYPES), help="comma-separated plate types")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "plates_types.json")
    parser.add_argument("--dump", type=Path, help="write the scenes and truth.jsonl here instead of benchmarking")
    args = parser.parse_args(argv)
    kinds = tuple(args.types.split(","))
    unknown = set(kinds) - set(PLATE_TYPES)
    if unknown:
        parser.error(f"unknown plate types {sorted(unknown)}; known: {', '.join(PLATE_TYPES)}")
    root = data_root()
    problem = missing_data(root) or (None if font_path() else "no CJK font (apt-get install fonts-wqy-zenhei)")
    if problem:
        sys.exit(problem)
    if args.dump:
        dump(args.per_type, args.seed, kinds, root, args.dump)
        return
    cv2.setNumThreads(1)  # the budget is per scene on one core (issue 16)
    started = time.perf_counter()
    report = run(args.per_type, args.seed, kinds, gatebox_pipeline(), root)
    report["command"] = " ".join(["python benchmarks/plates_types.py", *(argv if argv is not None else sys.argv[1:])])
    report["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table({**report["types"], **report["scales"], **report["real"]}))  # type: ignore[dict-item]
    print(f"\n{args.per_type} scenes per type, seed {args.seed}; {report['wall_s']} s; written to {args.out}")


if __name__ == "__main__":
    main()
