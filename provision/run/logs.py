"""run.log: one JSON object per line, with phone numbers masked on the way out.

Code that logs is expected to mask already (``phones.mask``); the formatter here is the
safety net for what slips through (a Graph error message quoting a number, say): every
phone-number-looking run is masked with ``phones.mask_in_text``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provision.masking import mask_in_text

LOGGER_NAME = "provision"
def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_in_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": mask_in_text(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(_mask_value(fields))
        if record.exc_info:
            entry["exception"] = mask_in_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def attach_run_log(path: Path) -> logging.Handler:
    """Send the provision logger to ``path`` as JSON lines; returns the handler to detach."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonLineFormatter())
    log = logger()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def detach(handler: logging.Handler) -> None:
    logger().removeHandler(handler)
    handler.close()
