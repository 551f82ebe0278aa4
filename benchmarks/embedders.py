"""1:1 verification of the face embedders on the labelled identities photos (41 photos of 9 people,
taken on different days): every pair of photos, genuine (same person) or impostor. Faces are found
once, as enrolment finds them (dlib's HOG detector); each embedder then aligns and embeds them its
own way, so the figures compare the embedders alone. Prints the genuine and impostor distance
percentiles, the equal error rate (EER) and its threshold, the decidability d' (separation of the
two distributions in their own spread, comparable across metrics) and the false accept / false
reject rates at the configured thresholds, for dlib and, with --onnx, for an ONNX model (never
shipped: bring your own, see the README). With --probe-face-px N one photo of each pair is first
shrunk so that its face is N px wide and re-encoded as JPEG (quality 75), as a gate camera sees a
face, while the other stays the enrolment photo.

--calibrate-template re-measures where dlib's 5 landmarks sit in the ArcFace 112x112 frame (the
`DLIB5_IN_ARCFACE` template the ONNX embedder aligns with) on every photo under faces/.

    .venv/bin/python benchmarks/embedders.py [--onnx MODEL.onnx] [--probe-face-px 40] [--json OUT.json]
    .venv/bin/python benchmarks/embedders.py --calibrate-template
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config import GateboxConfig, RecognitionConfig  # noqa: E402
from edge.detectors.dlib_hog import DlibHogFaceDetector  # noqa: E402
from edge.enroll import ENROL_DETECT_WIDTH  # noqa: E402
from edge.models import verify_models  # noqa: E402
from edge.protocol.embedding import OnnxEmbedderConfig  # noqa: E402
from edge.recognition.embedder import FaceEmbedder, embedder_recipe  # noqa: E402
from edge.recognition.gallery import Gallery  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
IDENTITIES = DATA / "faces" / "identities"
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)

Face = tuple[np.ndarray, np.ndarray, str]  # image, face box (1 x 4), identity


def load_faces(folder: Path) -> tuple[list[Face], list[str]]:
    """Each labelled photo's one face, found as enrolment finds it; and the photos without exactly one."""
    faces, skipped = [], []
    with (folder / "identities.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            image = cv2.imread(str(folder / row["file"]), cv2.IMREAD_COLOR)
            found = DlibHogFaceDetector(ENROL_DETECT_WIDTH, 2 if max(image.shape[:2]) < 500 else 1).detect(image)
            if len(found) != 1:
                skipped.append(f"{row['file']}: {len(found)} faces")
                continue
            faces.append((image, found.xyxy[:1], row["identity"]))
    return faces, skipped


def shrunk(face: Face, face_px: int) -> Face:
    """The photo scaled so its face is `face_px` wide, through a JPEG round trip."""
    image, box, identity = face
    scale = min(1.0, face_px / float(box[0, 2] - box[0, 0]))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), (box * scale).astype(np.float32), identity


def embed_all(embedder: FaceEmbedder, faces: list[Face]) -> tuple[np.ndarray, float]:
    """One embedding per face, and the ms each took (alignment + model)."""
    started = time.perf_counter()
    rows = [embedder.embed(image, box)[0] for image, box, _ in faces]
    return np.stack(rows).astype(np.float32), (time.perf_counter() - started) * 1000 / len(faces)


def pair_distances(
    embedder: FaceEmbedder, faces: list[Face], probe_face_px: int | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Genuine and impostor distances over every pair (ordered pairs enrolment -> probe when the probes
    are shrunk, since the two sides then differ), and ms an embedding."""
    enrolled, ms = embed_all(embedder, faces)
    probes = embed_all(embedder, [shrunk(f, probe_face_px) for f in faces])[0] if probe_face_px else enrolled
    labels = [identity for _, _, identity in faces]
    gallery = Gallery(enrolled, ("all",) * len(faces), tuple(labels), embedder=embedder.spec)
    distances = gallery.distances(probes).T  # [enrolled, probe]
    same = np.equal.outer(np.array(labels), np.array(labels))
    pairs = ~np.eye(len(faces), dtype=bool) if probe_face_px else np.triu(np.ones_like(same), 1)
    return distances[pairs & same], distances[pairs & ~same], ms


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false reject rate (genuine >= t) meets the false accept rate (impostor < t)."""
    best = (2.0, 0.0, 0.0)
    for t in np.unique(np.concatenate([genuine, impostor])):
        frr, far = float((genuine >= t).mean()), float((impostor < t).mean())
        if abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2, float(t))
    return best[1], best[2]


def decidability(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """d' = |mean_g - mean_i| / sqrt((var_g + var_i) / 2): how many spreads apart the two distributions are."""
    return float(abs(impostor.mean() - genuine.mean()) / np.sqrt((genuine.var() + impostor.var()) / 2))


def rate(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 4)


def report(name: str, spec_id: str, genuine: np.ndarray, impostor: np.ndarray, thresholds: dict[str, float],
           ms: float) -> dict[str, object]:  # fmt: skip
    eer, at = equal_error_rate(genuine, impostor)
    at_thresholds = {
        label: {"threshold": t, "far": rate(impostor < t), "frr": rate(genuine >= t)} for label, t in thresholds.items()
    }
    result: dict[str, object] = {
        "embedder": spec_id,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "genuine_percentiles": {p: round(float(np.percentile(genuine, p)), 3) for p in PERCENTILES},
        "impostor_percentiles": {p: round(float(np.percentile(impostor, p)), 3) for p in PERCENTILES},
        "eer": round(eer, 4),
        "eer_threshold": round(at, 3),
        "d_prime": round(decidability(genuine, impostor), 2),
        "at_thresholds": at_thresholds,
        "zero_far_threshold": round(float(impostor.min()), 3),
        "frr_at_zero_far": round(float((genuine >= impostor.min()).mean()), 4),
        "ms_per_face": round(ms, 1),
    }
    print(f"== {name} ({spec_id}): {len(genuine)} genuine, {len(impostor)} impostor pairs, "
          f"{ms:.0f} ms a face (align + embed)")  # fmt: skip
    print("   percentile   " + " ".join(f"{p:>6}" for p in PERCENTILES))
    for kind, values in (("genuine", genuine), ("impostor", impostor)):
        print(f"   {kind:<12} " + " ".join(f"{np.percentile(values, p):6.3f}" for p in PERCENTILES))
    print(f"   EER {eer:.1%} at distance {at:.3f}; d' {result['d_prime']}; no false accept below "
          f"{impostor.min():.3f} (false rejects there: {result['frr_at_zero_far']:.1%})")  # fmt: skip
    for label, row in at_thresholds.items():
        print(f"   at {label} {row['threshold']}: false accepts {row['far']:.1%}, false rejects {row['frr']:.1%}")
    return result


def calibrate_template(faces_dir: Path, paths: dict[str, Path]) -> np.ndarray:
    """dlib's 5 points in the ArcFace frame: each face (80 px or wider) aligned to the ArcFace reference
    with RetinaFace's five ArcFace-style landmarks, dlib's points mapped through the same transform,
    averaged, then made left-right symmetric about the reference's midline."""
    import dlib
    import onnxruntime as ort
    from retinaface.postprocess import postprocess
    from retinaface.preprocess import preprocess

    from edge.detectors.retinaface_onnx import to_dlib_boxes
    from edge.recognition.onnx_embedder import ARCFACE_REFERENCE, similarity_transform

    session = ort.InferenceSession(str(paths["face_detector_retinaface"]), providers=["CPUExecutionProvider"])
    predictor = dlib.shape_predictor(str(paths["face_landmarks_5"]))
    mapped = []
    for photo in sorted(faces_dir.glob("*/*.jpg")):
        image = cv2.imread(str(photo))
        scale = min(1.0, 1024 / image.shape[1])
        small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
        batch = preprocess(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        (found,) = postprocess(session.run(None, {"input": batch}), *batch.shape, score_threshold=0.8)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        for face in found:
            if face.width / scale < 80:
                continue
            arcface_points = np.array([[p.x, p.y] for p in face.landmarks], np.float32) / scale
            box = to_dlib_boxes(np.array([[face.x, face.y, face.x + face.width, face.y + face.height]], np.float32))
            x1, y1, x2, y2 = (int(v) for v in box[0] / scale)
            dlib_points = [(p.x, p.y) for p in predictor(rgb, dlib.rectangle(x1, y1, x2, y2)).parts()]
            matrix = similarity_transform(arcface_points, ARCFACE_REFERENCE)
            mapped.append(np.array(dlib_points) @ matrix[:, :2].T + matrix[:, 2])
    points = np.array(mapped)
    mean, spread = points.mean(0), points.std(0)
    midline = float(ARCFACE_REFERENCE[:, 0].mean())
    template = mean.copy()
    for right, left in ((0, 2), (1, 3)):  # dlib: image-right eye outer, inner; image-left eye outer, inner
        half = ((mean[right, 0] - midline) + (midline - mean[left, 0])) / 2
        template[right] = (midline + half, (mean[right, 1] + mean[left, 1]) / 2)
        template[left] = (midline - half, (mean[right, 1] + mean[left, 1]) / 2)
    template[4, 0] = midline
    print(f"{len(points)} faces; spread (std, px) {spread.min():.1f}-{spread.max():.1f}")
    print("DLIB5_IN_ARCFACE =", np.round(template, 2).tolist())
    return template


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, help="also evaluate this ArcFace-style ONNX model (never shipped)")
    parser.add_argument("--identities", type=Path, default=IDENTITIES, help="folder with identities.csv")
    parser.add_argument("--probe-face-px", type=int, help="shrink the probe photo of each pair to this face width")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--calibrate-template", action="store_true", help="re-measure the alignment template")
    args = parser.parse_args()
    if args.calibrate_template:
        calibrate_template(args.identities.parent, verify_models(GateboxConfig().models_path))
        return 0
    if not (args.identities / "identities.csv").is_file():
        print(f"no identities.csv in {args.identities} (set GATEBOX_TEST_DATA)", file=sys.stderr)
        return 2
    faces, skipped = load_faces(args.identities)
    print(f"{len(faces)} faces of {len({f[2] for f in faces})} people" + (f"; skipped {skipped}" if skipped else ""))
    if args.probe_face_px:
        print(f"probes shrunk to {args.probe_face_px} px faces, JPEG quality 75")
    paths = verify_models(GateboxConfig().models_path)
    configs = {"dlib": RecognitionConfig()}
    if args.onnx:
        configs["onnx"] = RecognitionConfig(embedder="onnx", onnx=OnnxEmbedderConfig(model=args.onnx))
    results = {}
    for name, config in configs.items():
        embedder = embedder_recipe(config, paths).build()
        active = config.with_embedder_thresholds()
        genuine, impostor, ms = pair_distances(embedder, faces, args.probe_face_px)
        thresholds = {"match_distance": active.match_distance, "strong_distance": active.strong_distance}
        results[name] = report(name, embedder.spec.id, genuine, impostor, thresholds, ms)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
