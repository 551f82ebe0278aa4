"""How both programs log: to stderr (the journal under systemd), optionally one JSON object per
line for the journal and log shippers (`logging:` in either program's config)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level (-v forces DEBUG).")
    as_json: bool = Field(False, description="One JSON object per line (for the journal and log shippers).")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what journald and log shippers index best."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def start_logging(verbose: bool) -> None:
    """Log to stderr from the start (before the config is read)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip


def configure_logging(config: LoggingConfig, verbose: bool) -> None:
    """Apply the config's `logging:` section (after `start_logging`)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else config.level)
    if config.as_json:
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
