"""Where the platform keeps uploaded clips and their renders (paths in `renders.path` are relative to it)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class UploadStorage(dg.ConfigurableResource):
    """The platform's storage root; every path read from the database is resolved inside it."""

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root)
