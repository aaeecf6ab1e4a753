"""What to record: the user's tracking settings, applied to the tracker and kept on disk.

This file is the one source of truth. JupyterLab reads it on load (`GET /settings`) into its
settings editor and sends the user's changes back (`PUT /settings`); a change made any other
way reaches open pages as a ``settings`` activity event. It is saved so a restarted server
honours it before any browser connects. An administrator's ``CellopsConfig.enabled = False``
wins over any user setting.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from pathlib import Path

from pydantic import ValidationError

from ..private import write_private
from ..schemas import TrackingSettings
from .tracker import Tracker

log = logging.getLogger(__name__)


class TrackingPolicy:
    def __init__(
        self, tracker: Tracker, path: Path, defaults: TrackingSettings, allowed: bool = True
    ) -> None:
        self.tracker = tracker
        self.path = path
        self.allowed = allowed
        self.settings = self._load(defaults)
        self._apply()

    def update(self, wanted: TrackingSettings) -> TrackingSettings:
        # A crash leaves the old file or the new one, never half; 0600 like the rest of the home.
        write_private(self.path, wanted.model_dump_json(indent=1))
        self.settings = wanted
        self._apply()
        return wanted

    def tracks(self, notebook: str) -> bool:
        return self.tracker.enabled and not self.tracker.is_excluded(notebook)

    def excluded_by(self, notebook: str) -> str | None:
        """The first exclude pattern (as the user wrote it) matching `notebook`, or None;
        the same test as the tracker's, so the sidebar can name the pattern to change."""
        path = notebook.strip("/")
        return next(
            (p for p in self.settings.exclude if fnmatch.fnmatchcase(path, p.strip("/"))),
            None,
        )

    def _apply(self) -> None:
        self.tracker.enabled = self.allowed and self.settings.tracking
        self.tracker.set_exclude(self.settings.exclude)
        self.tracker.max_text = self.settings.max_output_size

    def _load(self, defaults: TrackingSettings) -> TrackingSettings:
        try:
            return TrackingSettings.model_validate(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return defaults
        except (ValueError, ValidationError) as exc:
            log.warning("cellops: ignoring unreadable %s (%s); using defaults", self.path, exc)
            return defaults
