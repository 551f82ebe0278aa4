"""1:1 verification on ../shared/data/faces/identities (issue 14, item 1): how far apart the embedder
puts two photos of one person (genuine pairs) and photos of two people (impostor pairs).

Every photo is embedded with enrolment's embedder (`edge.enroll.photo_embedder`, so a configured
embedder is measured the same way) at its face as enrolment finds it. Three conditions:

- `photo`: photo against photo, every unordered pair;
- `gate_80px`, `gate_40px`: an enrolment photo against another photo shrunk to a gate camera's
  face size (80 / 40 px wide), blurred a little, noisy and JPEG-compressed, every ordered pair.

Distances come from `Gallery.distances`, the pipeline's own matching metric. Per condition: the
distance distributions, the ROC (false accepts / false rejects over thresholds), the equal error
rate, the rates at the configured thresholds, and thresholds for chosen operating points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.gateclips import identities, photo_face
from edge.config import GateboxConfig
from edge.enroll import photo_embedder
from edge.recognition.gallery import Gallery

Floats = npt.NDArray[np.float64]

GATE_SIZES = {"gate_80px": 80, "gate_40px": 40}
TARGET_FARS = (0.001, 0.01)  # operating points that favour precision (watchlist)
TARGET_FRRS = (0.05, 0.01)  # operating points that favour recall (missing elders: an operator confirms)


@dataclass(frozen=True)
class Pairs:
    genuine: Floats
    impostor: Floats


def gate_view(image: npt.NDArray[np.uint8], box: Sequence[float], face_px: int, seed: int) -> tuple[np.ndarray, list]:
    """The photo as a gate camera would see the face: `face_px` wide, soft, noisy, JPEG'd."""
    scale = face_px / (box[2] - box[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 0.7)
    noise = np.random.default_rng(seed).normal(0, 4.0, small.shape)
    small = np.clip(small + noise, 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 50])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), [v * scale for v in box]


def embed_all(
    config: GateboxConfig, folder: Path, conditions: Sequence[str]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Identity of each photo, and per condition its embeddings (rows in identities.csv order)."""
    embedder = photo_embedder(config)
    labels: list[str] = []
    rows: dict[str, list[np.ndarray]] = {c: [] for c in conditions}
    people = identities(folder)
    for identity, files in people.items():
        for file in files:
            image, box = photo_face(folder / file)
            labels.append(identity)
            for condition in conditions:
                if condition == "photo":
                    view, view_box = image, list(box)
                else:
                    view, view_box = gate_view(image, box, GATE_SIZES[condition], seed=len(labels))
                rows[condition].append(embedder.embed(view, np.array([view_box], np.float32))[0])
    return labels, {c: np.stack(r) for c, r in rows.items()}


def pair_distances(labels: Sequence[str], enrolled: np.ndarray, probes: np.ndarray, ordered: bool) -> Pairs:
    """Genuine and impostor distances between every enrolled photo and every other photo as a probe."""
    n = len(labels)
    gallery = Gallery(enrolled, ("verify",) * n, tuple(labels))
    distances = gallery.distances(probes).astype(np.float64)  # [probe, enrolled]
    same = np.equal.outer(np.asarray(labels), np.asarray(labels))
    keep = ~np.eye(n, dtype=bool) if ordered else np.triu(np.ones((n, n), bool), k=1)
    return Pairs(distances[keep & same], distances[keep & ~same])


def far_frr(pairs: Pairs, threshold: float) -> tuple[float, float]:
    """A pair is accepted when its distance is below the threshold (as `Gallery.nearest` matches)."""
    return float(np.mean(pairs.impostor < threshold)), float(np.mean(pairs.genuine >= threshold))


def roc(pairs: Pairs) -> list[tuple[float, float, float]]:
    """(threshold, FAR, FRR) at every distance where either rate changes, ascending."""
    thresholds = np.unique(np.concatenate([pairs.genuine, pairs.impostor, [0.0, math.inf]]))
    impostor, genuine = np.sort(pairs.impostor), np.sort(pairs.genuine)
    far = np.searchsorted(impostor, thresholds, side="left") / len(impostor)
    frr = 1.0 - np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    return list(zip(thresholds.tolist(), far.tolist(), frr.tolist(), strict=True))


def equal_error(curve: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(EER, threshold): where FAR and FRR cross; the mean of both at the closest threshold."""
    threshold, far, frr = min(curve, key=lambda p: (abs(p[1] - p[2]), p[1] + p[2]))
    return (far + frr) / 2, threshold


def at_far(pairs: Pairs, target: float) -> dict[str, float]:
    """The most lenient threshold whose false accept rate stays within `target`."""
    impostor = np.sort(pairs.impostor)
    allowed = math.floor(target * len(impostor) + 1e-9)  # impostors that may fall below it
    threshold = float(impostor[allowed]) if allowed < len(impostor) else math.inf
    far, frr = far_frr(pairs, threshold)
    return {"target_far": target, "threshold": threshold, "far": far, "frr": frr}


def at_frr(pairs: Pairs, target: float) -> dict[str, float]:
    """The strictest threshold whose false reject rate stays within `target`."""
    genuine = np.sort(pairs.genuine)
    rejected = math.floor(target * len(genuine) + 1e-9)
    threshold = float(np.nextafter(genuine[len(genuine) - 1 - rejected], math.inf))
    far, frr = far_frr(pairs, threshold)
    return {"target_frr": target, "threshold": threshold, "far": far, "frr": frr}


def percentiles(values: Floats, points: Sequence[float]) -> dict[str, float]:
    return {f"p{p:g}": float(np.percentile(values, p)) for p in points}


def summarise(pairs: Pairs, thresholds: dict[str, float]) -> dict:
    curve = roc(pairs)
    eer, eer_threshold = equal_error(curve)
    return {
        "genuine_pairs": len(pairs.genuine),
        "impostor_pairs": len(pairs.impostor),
        "genuine": {"min": float(pairs.genuine.min()), **percentiles(pairs.genuine, (50, 90, 95, 99)),
                    "max": float(pairs.genuine.max())},
        "impostor": {"min": float(pairs.impostor.min()), **percentiles(pairs.impostor, (0.1, 1, 5, 50))},
        "eer": eer,
        "eer_threshold": eer_threshold,
        "at_config": {name: dict(zip(("far", "frr"), far_frr(pairs, t), strict=True), threshold=t)
                      for name, t in thresholds.items()},
        "operating_points": [at_far(pairs, t) for t in TARGET_FARS] + [at_frr(pairs, t) for t in TARGET_FRRS],
        "roc": [(round(t, 4), round(far, 5), round(frr, 5)) for t, far, frr in curve],
        "distances": {"genuine": pairs.genuine.round(4).tolist(), "impostor": pairs.impostor.round(4).tolist()},
    }  # fmt: skip


def verify(config: GateboxConfig, folder: Path, conditions: Sequence[str] = ("photo", *GATE_SIZES)) -> dict:
    labels, embeddings = embed_all(config, folder, ["photo", *[c for c in conditions if c != "photo"]])
    thresholds = {
        "match_distance": config.recognition.match_distance,
        "strong_distance": config.recognition.strong_distance,
    }
    summaries = {}
    for condition in conditions:
        pairs = pair_distances(labels, embeddings["photo"], embeddings[condition], ordered=condition != "photo")
        summaries[condition] = summarise(pairs, thresholds)
    return {"photos": len(labels), "identities": len(set(labels)), "conditions": summaries}


def report(result: dict) -> str:
    lines = [
        f"1:1 verification: {result['photos']} photos of {result['identities']} people "
        "(pair accepted when distance < threshold)",
        f"{'condition':<10} {'pairs gen/imp':>14} {'genuine p50/p95/max':>22} {'impostor min/p1/p5':>21} "
        f"{'EER':>12}  at match / strong threshold (FAR, FRR)",
    ]
    for name, c in result["conditions"].items():
        g, i = c["genuine"], c["impostor"]
        at = c["at_config"]
        lines.append(
            f"{name:<10} {c['genuine_pairs']:>6}/{c['impostor_pairs']:<7} "
            f"{g['p50']:>8.3f}/{g['p95']:.3f}/{g['max']:.3f} {i['min']:>9.3f}/{i['p1']:.3f}/{i['p5']:.3f} "
            f"{100 * c['eer']:>5.1f}% @{c['eer_threshold']:.3f}  "
            + ", ".join(f"{v['threshold']:.2f}: {100 * v['far']:.2f}% / {100 * v['frr']:.1f}%" for v in at.values())
        )
    lines.append("suggested operating points (threshold -> FAR / FRR):")
    for name, c in result["conditions"].items():
        points = []
        for p in c["operating_points"]:
            goal = f"FAR<={100 * p['target_far']:g}%" if "target_far" in p else f"FRR<={100 * p['target_frr']:g}%"
            points.append(f"{goal}: {p['threshold']:.3f} -> {100 * p['far']:.2f}% / {100 * p['frr']:.1f}%")
        lines.append(f"  {name:<10} " + "; ".join(points))
    return "\n".join(lines)


def plot(result: dict, out: Path) -> list[Path]:
    """Distance histograms and ROC curves as PNGs; nothing (and no error) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    conditions = result["conditions"]
    fig, axes = plt.subplots(1, len(conditions), figsize=(4.2 * len(conditions), 3.6), dpi=110, sharey=False)
    for ax, (name, c) in zip(np.atleast_1d(axes), conditions.items(), strict=True):
        bins = np.linspace(0, max(1.0, max(c["distances"]["impostor"])), 50)
        ax.hist(c["distances"]["genuine"], bins, density=True, alpha=0.6, color="tab:green", label="same person")
        ax.hist(c["distances"]["impostor"], bins, density=True, alpha=0.6, color="tab:red", label="two people")
        for label, at in c["at_config"].items():
            ax.axvline(at["threshold"], color="black", ls="--" if label == "match_distance" else ":", lw=1,
                       label=f"{label} {at['threshold']:.2f}")  # fmt: skip
        ax.set_title(f"{name}: EER {100 * c['eer']:.1f}%")
        ax.set_xlabel("embedding distance")
        ax.legend(fontsize=7)
    fig.tight_layout()
    distances = out / "recognition_distances.png"
    fig.savefig(distances)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    for name, c in conditions.items():
        curve = np.array(c["roc"])
        ax.plot(np.maximum(curve[:, 1], 1e-4), curve[:, 2], label=f"{name} (EER {100 * c['eer']:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (impostor pairs accepted)")
    ax.set_ylabel("false reject rate (genuine pairs rejected)")
    ax.set_title("1:1 verification ROC, faces/identities")
    ax.legend(fontsize=8)
    fig.tight_layout()
    curve_png = out / "recognition_roc.png"
    fig.savefig(curve_png)
    plt.close(fig)
    return [distances, curve_png]
