"""The montage record's status rule, as a plain function: what each reported event does to the job."""

from __future__ import annotations

import pytest

from montage_pipeline.platform.models import JobStatus
from montage_pipeline.platform.montage_record import (
    MontageEditError,
    MontageEvent,
    clean_title,
    montage_status,
)


@pytest.mark.parametrize(
    ("event", "steps", "status"),
    [
        (MontageEvent.BUILD_STARTED, (), JobStatus.PROCESSING),
        (MontageEvent.EXPORT_STARTED, (), JobStatus.PROCESSING),
        (MontageEvent.EXPORT_GATED, (), JobStatus.FAILED),
        (MontageEvent.EXPORTED, (), JobStatus.SUCCESS),
        (MontageEvent.RUN_FAILED, (), JobStatus.FAILED),  # the run itself failed
        (MontageEvent.RUN_FAILED, ("eligible_jobs",), JobStatus.FAILED),
        (MontageEvent.RUN_FAILED, ("s3_exports", "social_posts"), JobStatus.FAILED),
        (MontageEvent.RUN_FAILED, ("social_posts",), None),  # a failed post leaves the montage alone
    ],
)
def test_each_event_decides_the_montage_status(
    event: MontageEvent, steps: tuple[str, ...], status: JobStatus | None
) -> None:
    assert montage_status(event, steps) == status


def test_a_title_is_stripped_and_bounded() -> None:
    assert clean_title("  Clutch  ") == "Clutch"
    for bad in ("", "   ", "x" * 256):
        with pytest.raises(MontageEditError):
            clean_title(bad)
