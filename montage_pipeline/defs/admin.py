"""Admin jobs, launched from the Dagster UI's Launchpad with run config: feature a montage, retitle it,
set a week's theme before its run.

They edit only the admin's fields of `weekly_montages` (`is_featured`, `title`); everything else in the
row is what the pipeline built. Rebuilding a week is the weekly job itself: `rebuild_week_job` is the
same selection under a name an admin finds, tagged so runs show who asked.
"""

import dagster as dg

from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.platform.montage_record import MontageEditError, feature, montage_row, retitle
from montage_pipeline.platform.themes import ThemeError, clear_theme, set_theme
from montage_pipeline.weeks import parse_week


class FeatureConfig(dg.Config):
    week: str  # the Monday the week starts, e.g. 2025-01-27
    featured: bool = True


class TitleConfig(dg.Config):
    week: str
    title: str


class ThemeConfig(dg.Config):
    week: str  # the Monday the week starts, e.g. 2025-01-27
    theme: str = ""  # empty: clear the setting (the run takes the most featured game)
    set_by: str = "dagster-ui"


def _check_week(week: str) -> None:
    try:
        parse_week(week)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


@dg.op(description="Mark a week's montage featured (or not) for the frontend.")
def set_featured(
    context: dg.OpExecutionContext, config: FeatureConfig, platform_db: PlatformDatabase
) -> None:
    _check_week(config.week)
    with platform_db.session() as session:
        row = montage_row(session, config.week)
        if row is None:
            raise dg.Failure(f"no montage for the week of {config.week} yet", allow_retries=False)
        feature(row, config.featured)
        montage_id = row.id
    context.log.info(f"montage {montage_id} ({config.week}) is_featured={config.featured}")
    context.add_output_metadata({"weekly_montage_id": montage_id, "is_featured": config.featured})


@dg.op(description="Change a week's montage title (what the frontend shows; published videos keep theirs).")
def set_title(context: dg.OpExecutionContext, config: TitleConfig, platform_db: PlatformDatabase) -> None:
    _check_week(config.week)
    with platform_db.session() as session:
        row = montage_row(session, config.week)
        if row is None:
            raise dg.Failure(f"no montage for the week of {config.week} yet", allow_retries=False)
        try:
            title = retitle(row, config.title)
        except MontageEditError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        montage_id = row.id
    context.log.info(f"montage {montage_id} ({config.week}) retitled {title!r}")
    context.add_output_metadata({"weekly_montage_id": montage_id, "title": title})


@dg.op(description="Set (or clear) a week's theme; the week's next run titles, colours and scores it.")
def set_week_theme(
    context: dg.OpExecutionContext, config: ThemeConfig, platform_db: PlatformDatabase
) -> None:
    _check_week(config.week)
    with platform_db.session() as session:
        if not config.theme:
            cleared = clear_theme(session, config.week)
            context.log.info(f"{config.week}: theme {'cleared' if cleared else 'was not set'}")
            context.add_output_metadata({"week": config.week, "theme": "none"})
            return
        try:
            row = set_theme(session, config.week, config.theme, config.set_by)
        except ThemeError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        theme = row.theme
    context.log.info(f"{config.week}: theme {theme!r}; rebuild the week for it to take effect")
    context.add_output_metadata({"week": config.week, "theme": theme})


@dg.job(tags={"montage/admin": "feature"}, description="Feature or unfeature a week's montage.")
def feature_montage_job() -> None:
    set_featured()


@dg.job(tags={"montage/admin": "title"}, description="Change a week's montage title.")
def retitle_montage_job() -> None:
    set_title()


@dg.job(tags={"montage/admin": "theme"}, description="Set a week's theme before its run (or clear it).")
def theme_week_job() -> None:
    set_week_theme()


rebuild_week_job = dg.define_asset_job(
    name="rebuild_week_job",
    selection=dg.AssetSelection.groups("montage"),
    description="Rebuild one week from its uploads to its posts (pick the week in the partition picker).",
    tags={"montage/job": "weekly", "montage/admin": "rebuild"},
)
