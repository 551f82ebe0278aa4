"""The recognition benchmark (issue 14, item 1): the whole pipeline over footage it was never tuned on.

Each case is a full `gatebox replay` (edge.runner.replay, in process, publishing off) of one clip
against a gallery enrolled through `edge.enroll`, scored with edge.scoring against the clip's truth:
recall (alerted / expected), false alerts (and per hour of video), time to alert after the subject is
first visible. Suites:

- `real`: every clip of ../shared/data/video with people in it. crowd_toward_camera.mp4 with its truth
  (enrolled from frame 30 of the same clip: same-clip enrolment, the easiest case there is); the others
  as stranger footage (none of the enrolled people is in them: every alert is false).
- `composed`: cross-photo gate clips (benchmarks/gateclips.py) composed at run time, never committed:
  people enrolled from 1-2 photos, filmed from another photo; strangers (identities not enrolled in
  that gallery) alone and beside a subject.
- `verify`: 1:1 verification on the identities' photos (benchmarks/verification.py).

    .venv/bin/python benchmarks/recognition.py [--suite all|real|composed|verify] [--quick] [--out DIR]
        [--config FILE] [--config-override recognition.min_quality_gain=0 ...] [--embedder NAME]
        [--baseline OLD.json] [--keep-clips DIR]
    .venv/bin/python benchmarks/recognition.py --diff BEFORE.json AFTER.json

A full run writes docs/bench/recognition.json (every case, every alert) and recognition.md (tables);
other runs write recognition-<suite>[-quick].json/.md, so a partial run never overwrites the record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import yaml
from pydantic import ValidationError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.gateclips import (  # noqa: E402
    BACKGROUNDS,
    MOTIONS,
    Actor,
    ClipSpec,
    ComposedClip,
    Degradation,
    Motion,
    compose,
    identities,
)
from edge.config import GateboxConfig, load_config  # noqa: E402
from edge.enroll import enroll_photos, photo_embedder  # noqa: E402
from edge.protocol.alert import Alert  # noqa: E402
from edge.protocol.errors import GateboxError, InputError  # noqa: E402
from edge.runner import replay  # noqa: E402
from edge.scoring import TrackedAlert, TruthRow, load_truth, score  # noqa: E402
from edge.store.lists import ListStore  # noqa: E402

DATA = Path(os.environ.get("GATEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
IDENTITIES = DATA / "faces" / "identities"
VIDEOS = DATA / "video"
TRUTH = REPO / "benchmarks" / "truth"

# Two disjoint galleries, so every identity is a subject in one and a stranger in the other.
FOLDS = {
    "fold_a": ("id01", "id03", "id05", "id07", "id09"),
    "fold_b": ("id02", "id04", "id06", "id08"),
}
# Both lists in both folds: per-list operating points can be read off the results.
LIST_OF = {
    "id01": "watchlist", "id03": "missing_elders", "id05": "watchlist", "id07": "missing_elders",
    "id09": "watchlist", "id02": "missing_elders", "id04": "watchlist", "id06": "missing_elders",
    "id08": "watchlist",
}  # fmt: skip
# Sizes and degradations cycle over the cases (lengths coprime with the 3 motions).
STANDING_PX = (60, 45, 80, 38, 95)
SIDEWAYS_PX = ((55, 60), (42, 45), (75, 80), (90, 95), (48, 52))
TOWARD_PX = (30, 100)
EXTRA_DEGRADATIONS: tuple[tuple[Degradation, ...], ...] = (
    (),
    ("motion_blur", "noise"),
    ("defocus",),
    ("exposure", "jpeg"),
    ("motion_blur", "defocus", "exposure", "noise"),
)
STRANGER_CASES_PER_FOLD = 3
MIXED_CASES_PER_FOLD = 3
# The fast subset (./scripts/test and --quick): all in fold_a, so one gallery is enrolled; every subject in it
# alerted on main before issue 14 (docs/benchmarks.md), with a margin in the per-frame distances.
QUICK = (
    "subject-id07-img50-standing",
    "subject-id03-img6-toward",
    "subject-id03-img7-sideways",
    "mixed-id03-img6+id06-img57-standing",
    "stranger-id02-img12-sideways",
)


@dataclass(frozen=True)
class RealCase:
    name: str
    video: str  # file in ../shared/data/video
    truth: str  # file in benchmarks/truth
    label: str
    gallery: str  # "all" (every identity) or "crowd" (all + the crowd clip's two people)


REAL_CASES = (
    RealCase("crowd_toward_camera", "crowd_toward_camera.mp4", "crowd_toward_camera.csv",
             "same-clip enrolment", "crowd"),
    RealCase("corridor_pair_walking", "corridor_pair_walking.gif", "corridor_pair_walking.csv",
             "stranger footage", "all"),
    RealCase("campus_pedestrians", "campus_pedestrians.avi", "campus_pedestrians.csv", "stranger footage", "all"),
    RealCase("one_by_one_from_behind", "one_by_one_from_behind.mp4", "one_by_one_from_behind.csv",
             "stranger footage", "all"),
)  # fmt: skip
QUICK_REAL = ("corridor_pair_walking",)


@dataclass(frozen=True)
class ComposedCase:
    spec: ClipSpec
    gallery: str  # a fold
    label: str  # cross-photo subject / stranger only / subject + stranger


def enrolment_split(people: dict[str, list[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """identity -> (photos enrolled, photos filmed): 2 enrolled when there are 4 or more, else 1."""
    return {who: (files[: 2 if len(files) >= 4 else 1], files[2 if len(files) >= 4 else 1 :])
            for who, files in people.items()}  # fmt: skip


def _motion_setup(index: int) -> tuple[Motion, tuple[int, int], tuple[Degradation, ...]]:
    motion = MOTIONS[index % len(MOTIONS)]
    turn = index // len(MOTIONS)
    turn += turn // len(EXTRA_DEGRADATIONS)  # shifts which size meets which degradation every round
    if motion == "standing":
        px = STANDING_PX[turn % len(STANDING_PX)]
        size = (px, px)
    elif motion == "sideways":
        size = SIDEWAYS_PX[turn % len(SIDEWAYS_PX)]
    else:
        size = TOWARD_PX
    return motion, size, EXTRA_DEGRADATIONS[index % len(EXTRA_DEGRADATIONS)]


def composed_cases(people: dict[str, list[str]]) -> list[ComposedCase]:
    """Every filmed photo of every identity as a subject case; then strangers alone, then beside a subject."""
    split = enrolment_split(people)
    fold_of = {who: fold for fold, members in FOLDS.items() for who in members}
    cases: list[ComposedCase] = []

    def add(actors: tuple[Actor, ...], fold: str, label: str, kind: str) -> None:
        motion, size, extra = _motion_setup(len(cases))
        who = "+".join(f"{a.identity}-{Path(a.photo).stem}" for a in actors)
        background = BACKGROUNDS[len(cases) % len(BACKGROUNDS)]
        spec = ClipSpec(f"{kind}-{who}-{motion}", actors, motion, size, extra, background)
        cases.append(ComposedCase(spec, fold, label))

    for who in sorted(people):
        for photo in split[who][1]:
            add((Actor(who, photo, "subject"),), fold_of[who], "cross-photo subject", "subject")
    for fold, members in FOLDS.items():
        others = [who for who in sorted(people) if who not in members]  # not enrolled in this fold
        for i in range(STRANGER_CASES_PER_FOLD):
            stranger = others[i % len(others)]
            photo = people[stranger][i % len(people[stranger])]
            add((Actor(stranger, photo, "stranger"),), fold, "stranger only", "stranger")
        for i in range(MIXED_CASES_PER_FOLD):
            subject = members[i * len(members) // MIXED_CASES_PER_FOLD]
            filmed = split[subject][1]
            stranger = others[-1 - i % len(others)]
            actors = (
                Actor(subject, filmed[-1 - i % len(filmed)], "subject"),
                Actor(stranger, people[stranger][-1 - i % len(people[stranger])], "stranger"),
            )
            add(actors, fold, "subject + stranger side by side", "mixed")
    return cases


# --- configuration -------------------------------------------------------------------------------


def build_config(base: Path | None, overrides: Sequence[str], embedder: str | None) -> GateboxConfig:
    """The config every replay runs with: a file (or the defaults) plus `section.field=value` overrides."""
    config = load_config(base)
    raw = config.model_dump(mode="python", exclude_unset=False)
    pairs = [*overrides, *([f"recognition.embedder={embedder}"] if embedder else [])]
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config-override wants key=value (e.g. recognition.min_quality_gain=0), got {item!r}")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"--config-override {key}: no section {part!r} in the config")
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    try:
        return GateboxConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {'unknown field' if err['type'] == 'extra_forbidden' else err['msg']}"
            for err in e.errors()
        )
        hint = " (--embedder needs a build with recognition.embedder)" if embedder and "embedder" in problems else ""
        raise SystemExit(f"invalid --config-override: {problems}{hint}") from None


# --- galleries -----------------------------------------------------------------------------------


def enrol_galleries(
    config: GateboxConfig, work: Path, people: dict[str, list[str]], wanted: set[str]
) -> tuple[dict[str, Path], dict[str, dict]]:
    """Data dirs of the galleries wanted ("all", "crowd", folds), each enrolled once through edge.enroll.

    A photo enrolment refuses is left out and reported; a subject with no photo left is not enrolled.
    """
    split = enrolment_split(people)
    needed = set(people) if wanted & {"all", "crowd"} else {w for f in wanted if f in FOLDS for w in FOLDS[f]}
    base = work / "gallery-all"
    report: dict[str, dict] = {}
    for who in sorted(needed):
        photos, refused = [IDENTITIES / p for p in split[who][0]], {}
        while photos:
            try:
                enroll_photos(config, base, LIST_OF[who], who, None, photos)
                break
            except InputError as e:  # enrolment names the photo it refuses: leave that one out
                bad = next((p for p in photos if str(p) in str(e)), photos[0])
                refused[bad.name] = str(e)
                photos.remove(bad)
        report[who] = {"list": LIST_OF[who], "photos": [p.name for p in photos], "refused": refused,
                       "filmed": split[who][1]}  # fmt: skip
    dirs = {}
    for gallery in sorted(wanted):
        target = work / f"gallery-{gallery}"
        if gallery != "all":
            shutil.copytree(base, target)
        with closing(ListStore(target)) as store:
            for who in needed:
                if gallery in FOLDS and who not in FOLDS[gallery]:
                    store.remove(LIST_OF[who], who)
        if gallery == "crowd":
            from tests.support import crowd

            for subject, list_name in crowd.ENROL_LISTS.items():
                photo = crowd.write_face_crop(VIDEOS / "crowd_toward_camera.mp4", subject, work / f"{subject}.png")
                enroll_photos(config, target, list_name, subject, None, [photo])
        dirs[gallery] = target
    return dirs, report


# --- one case --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scored:
    """An alert as scoring sees it; `subject_id` is relabelled when the alert sat on someone else's face."""

    subject_id: str
    frame: int
    track_id: int
    score: float


class RecordedAlert(TrackedAlert, Protocol):
    """What a case's record shows of an alert (an `edge.protocol.alert.Alert` has it; so does a test's stand-in)."""

    @property
    def list(self) -> str: ...

    @property
    def distance(self) -> float: ...

    @property
    def matching_frames(self) -> int: ...

    @property
    def bbox(self) -> tuple[int, int, int, int]: ...


A = TypeVar("A", bound=RecordedAlert)


def _video_fps(video: Path) -> float:
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else 25.0


def _alert_record(alert: RecordedAlert, on: str | None) -> dict[str, Any]:
    return {"subject_id": alert.subject_id, "list": alert.list, "frame": alert.frame, "track_id": alert.track_id,
            "distance": round(alert.distance, 4), "matching_frames": alert.matching_frames, "bbox": alert.bbox,
            "on": on}  # fmt: skip


def run_case(
    config: GateboxConfig,
    data_dir: Path,
    video: Path,
    truth: list[TruthRow],
    fps: float,
    whose_face: Callable[[Alert], str | None] | None = None,
) -> dict[str, Any]:
    """One `gatebox replay` of `video` against the gallery in `data_dir`, scored."""
    started = time.monotonic()
    result = replay(config, data_dir, video, publish=False, progress=False)
    wall = time.monotonic() - started
    return {
        "frames": result.frames,
        "fps": fps,
        "duration_s": round(result.frames / fps, 3),
        **score_alerts(result.alerts, truth, fps, whose_face),
        "replay_wall_s": round(wall, 2),
        "replay_fps": round(result.frames / result.seconds, 1) if result.seconds else None,
    }


def score_alerts(
    alerts: Sequence[A],
    truth: Sequence[TruthRow],
    fps: float,
    whose_face: Callable[[A], str | None] | None = None,
) -> dict[str, Any]:
    """edge.scoring's verdict, made stricter where the clip knows whose face an alert was on
    (`whose_face(alert)`): an alert on anyone but the subject it names is false, even while that
    subject is in view elsewhere in the frame."""
    records, scored = [], []
    for alert in alerts:
        on = whose_face(alert) if whose_face else None
        label = alert.subject_id if on in (None, alert.subject_id) else f"{alert.subject_id} on {on}"
        scored.append(_Scored(label, alert.frame, alert.track_id, alert.score))
        records.append(_alert_record(alert, on))
    outcome = score(scored, truth)
    subjects = []
    for row, s in zip(truth, outcome.subjects, strict=True):
        delay = s.frames_to_alert
        subjects.append({"subject_id": s.subject_id, "first_frame": s.first_frame, "last_frame": row.last_frame,
                         "alert_frame": s.alert_frame, "frames_to_alert": delay,
                         "seconds_to_alert": None if delay is None else round(delay / fps, 3)})  # fmt: skip
    false = [{"subject_id": a.subject_id, "frame": a.frame, "track_id": a.track_id} for a in outcome.false_alerts]
    return {
        "expected": len(truth),
        "alerted": outcome.true_alerts,
        "missed": outcome.missed,
        "false_alerts": len(false),
        "false": false,
        "subjects": subjects,
        "alerts": records,
    }


def run_real(config: GateboxConfig, dirs: dict[str, Path], case: RealCase) -> dict[str, Any]:
    video = VIDEOS / case.video
    outcome = run_case(config, dirs[case.gallery], video, load_truth(TRUTH / case.truth), _video_fps(video))
    return {"name": case.name, "part": "real", "label": case.label, "gallery": case.gallery, "clip": case.video,
            **outcome}  # fmt: skip


def run_composed(
    config: GateboxConfig, dirs: dict[str, Path], case: ComposedCase, clips: Path, per_frame: bool = True
) -> dict[str, Any]:
    clip = compose(case.spec, IDENTITIES, VIDEOS, clips)

    def whose_face(alert: Alert) -> str | None:
        actor = clip.actor_at(alert.frame, alert.bbox)
        return "a face of the background" if actor is None else case.spec.actors[actor].identity

    outcome = run_case(config, dirs[case.gallery], clip.path, clip.truth(), clip.fps, whose_face)
    seen = per_frame_matches(config, dirs[case.gallery], clip) if per_frame else [None] * len(case.spec.actors)
    for subject in outcome["subjects"]:
        widths = _widths(clip, subject["subject_id"])
        at = subject["alert_frame"]
        subject["face_px_at_alert"] = None if at is None else round(widths.get(at, 0.0), 1)
        subject["face_px"] = [round(min(widths.values()), 1), round(max(widths.values()), 1)]
    spec = case.spec
    return {
        "name": spec.name, "part": "composed", "label": case.label, "gallery": case.gallery,
        "motion": spec.motion, "degradations": list(spec.degradations), "face_px": list(spec.face_px),
        "background": spec.background, "codec": clip.codec,
        "actors": [{"identity": a.identity, "photo": a.photo, "role": a.role, "list": LIST_OF[a.identity],
                    "visible": clip.visible_frames(i), "per_frame": seen[i]} for i, a in enumerate(spec.actors)],
        **outcome,
    }  # fmt: skip


PER_FRAME_STEP = 10  # every 10th frame: enough to tell the embedder's limits from the pipeline's


def per_frame_matches(config: GateboxConfig, data_dir: Path, clip: ComposedClip) -> list[dict[str, Any]]:
    """What a per-frame loop would see (the issue's face_recognition comparison): each actor's face,
    at its true box every PER_FRAME_STEP frames, embedded and matched against the gallery. A subject
    the pipeline missed although most frames match points at sampling or decision, not the embedder;
    a stranger's closest distance is the margin the thresholds keep."""
    with closing(ListStore(data_dir)) as store:
        gallery = store.gallery(config.lists)
    if len(gallery) == 0:  # every enrolment photo refused: nothing to match against
        return [None] * len(clip.spec.actors)  # type: ignore[list-item]
    embedder = _embedder(config)
    threshold = config.recognition.match_distance
    found: list[dict[str, Any]] = []
    capture = cv2.VideoCapture(str(clip.path))
    images = {}
    for index in range(clip.frame_count):
        ok, image = capture.read()
        if not ok:
            break
        if index % PER_FRAME_STEP == 0:
            images[index] = image
    capture.release()
    for actor, boxes in zip(clip.spec.actors, clip.boxes, strict=True):
        looks = [(i, box) for i, box in enumerate(boxes) if box is not None and i in images]
        own, nearest_other, matched_self, matched_other = [], [], 0, 0
        for index, box in looks:
            (distances,) = gallery.distances(embedder.embed(images[index], np.array([box], np.float32)))
            mine = [d for d, who in zip(distances, gallery.subject_ids, strict=True) if who == actor.identity]
            others = [d for d, who in zip(distances, gallery.subject_ids, strict=True) if who != actor.identity]
            best = gallery.subject_ids[int(np.argmin(distances))]
            if min(distances) < threshold:
                matched_self += best == actor.identity
                matched_other += best != actor.identity
            if mine:
                own.append(float(min(mine)))
            if others:
                nearest_other.append(float(min(others)))
        found.append({
            "frames_looked": len(looks),
            "matched_self": matched_self,
            "matched_other": matched_other,
            "own_distance": _spread(own),
            "nearest_other_distance": _spread(nearest_other),
        })  # fmt: skip
    return found


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


@cache
def _embedder_for(config_json: str) -> Any:
    return photo_embedder(GateboxConfig.model_validate_json(config_json))


def _embedder(config: GateboxConfig) -> Any:
    return _embedder_for(config.model_dump_json())


def _widths(clip: ComposedClip, identity: str) -> dict[int, float]:
    index = next(i for i, a in enumerate(clip.spec.actors) if a.identity == identity)
    return {f: b[2] - b[0] for f, b in enumerate(clip.boxes[index]) if b is not None}


# --- totals, tables, comparison ------------------------------------------------------------------


def totals(cases: Sequence[dict]) -> dict[str, Any]:
    expected = sum(c["expected"] for c in cases)
    alerted = sum(c["alerted"] for c in cases)
    false = sum(c["false_alerts"] for c in cases)
    hours = sum(c["duration_s"] for c in cases) / 3600
    delays = [s["seconds_to_alert"] for c in cases for s in c["subjects"] if s["seconds_to_alert"] is not None]
    strangers = [c for c in cases if c["expected"] == 0]
    return {
        "cases": len(cases),
        "expected": expected,
        "alerted": alerted,
        "recall": alerted / expected if expected else None,
        "false_alerts": false,
        "video_s": round(hours * 3600, 1),
        "false_alerts_per_hour": false / hours if hours else None,
        "stranger_cases_with_false_alert": sum(c["false_alerts"] > 0 for c in strangers),
        "stranger_cases": len(strangers),
        "seconds_to_alert": {
            "median": statistics.median(delays), "p90": _quantile(delays, 0.9), "max": max(delays)
        } if delays else None,
    }  # fmt: skip


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def grouped_totals(cases: Sequence[dict]) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {"all": list(cases)}
    for c in cases:
        groups.setdefault(f"part: {c['part']}", []).append(c)
        groups.setdefault(f"label: {c['label']}", []).append(c)
        if c["part"] == "composed":
            groups.setdefault(f"motion: {c['motion']}", []).append(c)
            for actor in c["actors"]:
                if actor["role"] == "subject":
                    groups.setdefault(f"list: {actor['list']}", []).append(c)
    order = ("all", "part", "label", "motion", "list")
    ranked = sorted(groups, key=lambda name: (order.index(name.split(":")[0]), name))
    return {name: totals(groups[name]) for name in ranked}


def _case_row(c: dict) -> str:
    subjects = c["subjects"]
    hit = [s for s in subjects if s["alert_frame"] is not None]
    if not subjects:
        outcome = "—"
    elif hit:
        outcome = ", ".join(f"{s['frames_to_alert']} fr / {s['seconds_to_alert']:.2f} s"
                            + (f" @{s['face_px_at_alert']:.0f}px" if s.get("face_px_at_alert") else "")
                            for s in hit)  # fmt: skip
    else:
        outcome = "**MISSED**"
    false = "; ".join(f"{f['subject_id']} fr {f['frame']}" for f in c["false"]) or ""
    composed = c["part"] == "composed"
    what = c["motion"] if composed else "real clip"
    setting = ("+".join(c["degradations"]) or "clean") if composed else c["label"]
    px = "-".join(str(p) for p in c["face_px"]) if "face_px" in c else ""
    return (f"| {c['name']} | {what} | {px} | {setting} | {c['alerted']}/{c['expected']} | {outcome} | "
            f"{c['false_alerts']}{' (' + false + ')' if false else ''} | {_per_frame_text(c)} |")  # fmt: skip


def _per_frame_text(c: dict) -> str:
    """Subjects: sampled frames matched to them, their median distance; strangers: the closest anyone got."""
    parts = []
    for actor in c.get("actors", []):
        seen = actor["per_frame"]
        if not seen:
            continue
        if actor["role"] == "subject" and seen["own_distance"]:
            parts.append(f"{seen['matched_self']}/{seen['frames_looked']} (med {seen['own_distance']['median']:.2f})")
        elif actor["role"] == "stranger" and seen["nearest_other_distance"]:
            wrong = f"{seen['matched_other']} matched, " if seen["matched_other"] else ""
            parts.append(f"stranger {wrong}min {seen['nearest_other_distance']['min']:.2f}")
    return "; ".join(parts)


def markdown(report: dict) -> str:
    lines = []
    if report.get("cases"):
        lines += [
            "| case | motion | face px | degradations | alerted | time to alert (@face px) | false alerts "
            f"| per-frame loop (every {PER_FRAME_STEP}th frame) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [_case_row(c) for c in report["cases"]]
        lines += ["", "| group | cases | recall | false alerts | video | false / hour | "
                  "time to alert median / p90 / max |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, t in report["totals"].items():
            recall = f"{t['alerted']}/{t['expected']} ({100 * t['recall']:.0f}%)" if t["expected"] else "—"
            tta = t["seconds_to_alert"]
            tta_text = f"{tta['median']:.2f} / {tta['p90']:.2f} / {tta['max']:.2f} s" if tta else "—"
            lines.append(f"| {name} | {t['cases']} | {recall} | {t['false_alerts']} | {t['video_s'] / 60:.1f} min | "
                         f"{t['false_alerts_per_hour']:.1f} | {tta_text} |")  # fmt: skip
    if report.get("verification"):
        from benchmarks.verification import report as verification_report

        lines += ["", "```", verification_report(report["verification"]), "```"]
    return "\n".join(lines) + "\n"


def compare(before: dict, after: dict) -> str:
    """Per case and in total: what changed between two runs' JSON (same suite)."""
    old = {c["name"]: c for c in before.get("cases", [])}
    lines = ["case                                         before              after"]
    for c in after.get("cases", []):
        b = old.get(c["name"])
        if b is None:
            continue
        if (b["alerted"], b["false_alerts"]) != (c["alerted"], c["false_alerts"]) or _tta(b) != _tta(c):
            lines.append(f"{c['name']:<44} {_brief(b):<19} {_brief(c)}")
    if len(lines) == 1:
        lines.append("(no case changed)")
    for name in ("all", "part: real", "part: composed"):
        tb, ta = before.get("totals", {}).get(name), after.get("totals", {}).get(name)
        if tb and ta:
            lines.append(f"{name:<16} recall {tb['alerted']}/{tb['expected']} -> {ta['alerted']}/{ta['expected']}, "
                         f"false alerts {tb['false_alerts']} -> {ta['false_alerts']}, "
                         f"median time to alert {_median(tb)} -> {_median(ta)}")  # fmt: skip
    return "\n".join(lines)


def _tta(c: dict) -> list:
    return [s["frames_to_alert"] for s in c["subjects"]]


def _brief(c: dict) -> str:
    tta = ",".join("-" if s["seconds_to_alert"] is None else f"{s['seconds_to_alert']:.2f}s" for s in c["subjects"])
    return f"{c['alerted']}/{c['expected']} {tta} f{c['false_alerts']}"


def _median(t: dict) -> str:
    return f"{t['seconds_to_alert']['median']:.2f} s" if t.get("seconds_to_alert") else "-"


# --- the run -------------------------------------------------------------------------------------


def run(
    config: GateboxConfig,
    suite: str,
    quick: bool,
    work: Path,
    only: Sequence[str] = (),
    clips: Path | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs a suite and returns the report (what recognition.json holds)."""
    started = time.monotonic()
    people = identities(IDENTITIES)
    composed = composed_cases(people) if suite in ("all", "composed") else []
    real = list(REAL_CASES) if suite in ("all", "real") else []
    if quick:
        composed = [c for c in composed if c.spec.name in QUICK]
        real = [c for c in real if c.name in QUICK_REAL]
    if only:
        composed = [c for c in composed if c.spec.name in only]
        real = [c for c in real if c.name in only]
    galleries = {c.gallery for c in composed} | {c.gallery for c in real}
    report: dict[str, Any] = {"meta": _meta(config, suite, quick), "cases": []}
    if galleries:
        progress(f"enrolling galleries: {', '.join(sorted(galleries))}")
        dirs, report["enrolment"] = enrol_galleries(config, work, people, galleries)
        progress(f"  ({time.monotonic() - started:.0f} s)")
        for real_case in real:
            report["cases"].append(run_real(config, dirs, real_case))
            progress(f"{_case_row(report['cases'][-1])} ({time.monotonic() - started:.0f} s)")
        for case in composed:
            # The per-frame comparison is diagnosis, not scoring: the fast subset goes without it.
            report["cases"].append(run_composed(config, dirs, case, clips or work / "clips", per_frame=not quick))
            progress(f"{_case_row(report['cases'][-1])} ({time.monotonic() - started:.0f} s)")
        report["totals"] = grouped_totals(report["cases"])
    if suite in ("all", "verify"):
        from benchmarks.verification import GATE_SIZES, verify

        progress("1:1 verification on the identities' photos")
        report["verification"] = verify(config, IDENTITIES, ("photo",) if quick else ("photo", *GATE_SIZES))
    report["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    return report


def _meta(config: GateboxConfig, suite: str, quick: bool) -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/recognition.py", *sys.argv[1:]]),
        "suite": suite,
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "recognition": config.recognition.model_dump(mode="json"),
        "detector": config.detector.model_dump(mode="json"),
        "tracking": config.tracking.model_dump(mode="json"),
    }


def _slim(report: dict) -> dict:
    """The JSON on disk keeps the ROC curve but drops the raw pair distances (the plots have them)."""
    slim = json.loads(json.dumps(report))
    for condition in slim.get("verification", {}).get("conditions", {}).values():
        condition.pop("distances", None)
    return slim


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("all", "real", "composed", "verify"), default="all")
    parser.add_argument("--quick", action="store_true", help="the fast subset ./scripts/test runs")
    parser.add_argument("--case", action="append", default=[], help="only this case (repeatable)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    parser.add_argument("--config", type=Path, help="a gatebox config file (default: built-in defaults)")
    parser.add_argument("--config-override", action="append", default=[], metavar="KEY=VALUE",
                        help="e.g. recognition.min_quality_gain=0 (repeatable)")  # fmt: skip
    parser.add_argument("--embedder", help="shorthand for --config-override recognition.embedder=NAME")
    parser.add_argument("--baseline", type=Path, help="a previous run's JSON: print what changed")
    parser.add_argument("--diff", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="compare two runs; no run")
    parser.add_argument("--keep-clips", type=Path, help="keep the composed clips in this folder")
    args = parser.parse_args(argv)
    if args.diff:
        before, after = (json.loads(p.read_text()) for p in args.diff)
        print(compare(before, after))
        return
    if not (IDENTITIES / "identities.csv").is_file() or not VIDEOS.is_dir():
        raise SystemExit(f"benchmark data not found at {DATA} (set GATEBOX_TEST_DATA)")
    config = build_config(args.config, args.config_override, args.embedder)
    with tempfile.TemporaryDirectory(prefix="gatebox-recognition-") as tmp:
        work = Path(tmp)
        try:
            report = run(config, args.suite, args.quick, work, args.case, args.keep_clips)
        except GateboxError as e:
            raise SystemExit(f"recognition benchmark: {e}") from None
    stem = "recognition" if args.suite == "all" and not args.quick and not args.case else (
        f"recognition-{args.suite}{'-quick' if args.quick else ''}{'-cases' if args.case else ''}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(_slim(report), indent=1))
    table = markdown(report)
    (args.out / f"{stem}.md").write_text(table)
    print(table)
    if report.get("verification"):
        from benchmarks.verification import plot

        written = plot(report["verification"], args.out) if stem == "recognition" else []
        if stem == "recognition" and not written:
            print("(plots skipped: matplotlib is not installed; `pip install .[bench]`)")
    print(f"wrote {args.out / (stem + '.json')} and .md ({report['meta']['wall_s']:.0f} s)")
    if args.baseline:
        print(compare(json.loads(args.baseline.read_text()), _slim(report)))


if __name__ == "__main__":
    main()
