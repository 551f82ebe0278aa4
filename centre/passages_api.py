"""The console's passage API: counts (today, last 24 h by hour) and the searchable passage log."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from centre.passages import PassageFilter, PassageLog, counts


def passage_routes(log: PassageLog, operator: object) -> APIRouter:
    """`operator`: the console's login dependency (every route needs an operator's session)."""
    router = APIRouter(dependencies=[Depends(operator)])  # type: ignore[arg-type]

    @router.get("/api/passages/counts")
    def passage_counts(site: str | None = None, box_id: str | None = None,
                       camera: str | None = None) -> dict[str, object]:  # fmt: skip
        return counts(log, time.time(), PassageFilter(site=site, box_id=box_id, camera=camera))

    @router.get("/api/passages")
    def passages(
        since: float | None = None, until: float | None = None, site: str | None = None, box_id: str | None = None,
        camera: str | None = None, direction: Literal["in", "out"] | None = None,
        subject: Literal["person", "vehicle"] | None = None,
        plate: Annotated[str | None, Query(max_length=16)] = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, object]:  # fmt: skip
        where = PassageFilter(since, until, site, box_id, camera, direction, subject, plate and plate.upper(), limit)
        return {"passages": log.search(where)}

    return router
