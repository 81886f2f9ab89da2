"""The `montage` command: database migrations, seeding a week, and small operator helpers."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.seed_import import DEFAULT_MAX_FILE_BYTES
from montage_pipeline.profiles import Profile, ProfileError
from montage_pipeline.settings import Settings, load_settings

MB = 1_000_000


def _size(raw: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in raw.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {raw!r} must look like 1920x1080") from exc
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size {raw!r} must be positive and even")
    return w, h


def _rates(raw: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(v) for v in raw.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"frame rates {raw!r} must look like 30,60") from exc
    if not rates or any(not 1 <= r <= 120 for r in rates):
        raise argparse.ArgumentTypeError(f"frame rates {raw!r} must each be 1–120")
    return rates


def _positive_mb(raw: str) -> int:
    try:
        value = float(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of MB") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a positive number of MB")
    return int(value * MB)


def asset_tables() -> list[str]:
    """The tables the table IO manager writes: one per asset stored through `table_io_manager`.

    Read from the definitions, so the list is exactly the derived data; platform tables are never on it
    (not even `montage_notifications`, which shares the prefix).
    """
    from montage_pipeline.definitions import defs
    from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager

    graph = defs.resolve_asset_graph()
    manager = TableIOManager(url="")  # only its naming is used
    names = []
    for key in graph.get_all_asset_keys():
        assets_def = graph.get(key).assets_def
        if not assets_def.is_executable:
            continue
        output = assets_def.node_def.output_def_named(assets_def.get_output_name_for_asset_key(key))
        if output.io_manager_key == "table_io_manager":
            names.append(manager.table_name(key))
    return sorted(names)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="montage", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the platform database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate the platform schema to the newest revision (Postgres or SQLite)")
    drop = db.add_parser("drop-table", help="drop one asset table (derived data) after a row layout change")
    drop.add_argument("table", help="an asset table name, e.g. montage_selected_clips")

    seed = sub.add_parser("seed", help="put a week of uploads in the platform").add_subparsers(
        dest="seed_command", required=True
    )
    demo = seed.add_parser("demo", help="generate a realistic demo week (real H.264/AAC clips)")
    demo.add_argument("--week", required=True, help="the Monday the week starts, e.g. 2025-01-27")
    demo.add_argument("--clips", type=int, default=20, help="good clips to generate (default 20)")
    demo.add_argument("--size", type=_size, default=(1920, 1080), help="clip size (default 1920x1080)")
    demo.add_argument(
        "--fps",
        type=_rates,
        default=(30, 60),
        help="each clip's frame rate is drawn from this list; repeat a rate to weight it (default 30,60)",
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed (default: derived from the week)")
    api = sub.add_parser("api", help="serve the read API for the frontend (/v2/weekly-montages)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    imp = seed.add_parser("import", help="register existing video files as a week's uploads")
    imp.add_argument("--week", required=True)
    imp.add_argument("--manifest", required=True, type=Path)
    imp.add_argument(
        "--import-root",
        type=Path,
        default=None,
        help="the folder every listed file must be in (default: the manifest's folder)",
    )
    imp.add_argument(
        "--max-file-mb",
        type=_positive_mb,
        default=None,
        help=f"largest file accepted, in MB (default {DEFAULT_MAX_FILE_BYTES // MB})",
    )
    posts = sub.add_parser("posts", help="social posts the outbox stopped on: list, retry, mark published")
    posts_sub = posts.add_subparsers(dest="posts_command", required=True)
    listing = posts_sub.add_parser("list", help="posts that did not end published (all with --all)")
    listing.add_argument("--week", default=None, help="only this week (its Monday, e.g. 2025-01-27)")
    listing.add_argument("--all", action="store_true", help="published posts too")
    again = posts_sub.add_parser("retry", help="no post found on the platform: the next run posts it anew")
    again.add_argument("post_id", type=int)
    found = posts_sub.add_parser("mark-published", help="the post was found on the platform: record it")
    found.add_argument("post_id", type=int)
    found.add_argument("remote_id", help="the platform's id of the post (e.g. the YouTube video id)")
    found.add_argument("--url", default=None, help="its address (YouTube's is derived from the id)")
    return parser


def _migrate(profile: Profile) -> None:
    from montage_pipeline.platform.migrate import upgrade

    if profile.name == "embedded":
        profile.storage_root.mkdir(parents=True, exist_ok=True)
        assert profile.media_root is not None
        profile.media_root.mkdir(parents=True, exist_ok=True)
    upgrade(profile.database_url_value())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        settings = load_settings()
    except ProfileError as exc:
        print(f"montage: {exc}", file=sys.stderr)
        return 2
    profile = settings.profile

    if args.command == "db" and args.db_command == "upgrade":
        _migrate(profile)
        print(f"platform schema up to date ({profile.name} profile)")
        return 0
    if args.command == "db" and args.db_command == "drop-table":
        return _drop_table(profile, args.table)
    if args.command == "api":
        from montage_pipeline.api.serve import serve

        serve(settings, args.host, args.port)
        return 0
    if args.command == "seed" and args.seed_command == "demo":
        return _seed_demo(settings, args)
    if args.command == "seed":
        return _seed_import(profile, args, settings.week_timezone)
    if args.command == "posts":
        return _posts(profile, args)
    return 2


def _drop_table(profile: Profile, table: str) -> int:
    """Drop one asset table (never a platform table), so its asset is rebuilt from scratch."""
    allowed = asset_tables()
    if table not in allowed:
        print(
            f"montage: {table!r} is not an asset table; platform tables are never dropped "
            f"(asset tables: {', '.join(allowed)})",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(profile.tables_database_url_value())
    with engine.begin() as conn:
        if not inspect(conn).has_table(table):
            print(f"montage: no table {table!r}", file=sys.stderr)
            return 2
        conn.execute(text(f'DROP TABLE "{table}"'))
    print(f"dropped {table}")
    return 0


def _seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    profile = settings.profile
    _migrate(profile)
    engine = make_engine(profile.database_url_value())
    try:
        with Session(engine) as session, session.begin():
            from montage_pipeline.platform.seed_demo import seed_demo

            report = seed_demo(
                session,
                profile.storage_root,
                args.week,
                args.clips,
                args.size,
                args.seed,
                timezone=settings.week_timezone,
                fps=args.fps,
            )
            summary = report.summary() + f"\nplanted events: {report.planted_path}"
    except ValueError as exc:
        print(f"montage: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(summary)
    return 0


def _posts(profile: Profile, args: argparse.Namespace) -> int:
    from montage_pipeline.publishing.post_admin import PostAdminError, list_posts, mark_published, retry
    from montage_pipeline.weeks import week_row_key

    engine = make_engine(profile.database_url_value())
    try:
        with Session(engine) as session, session.begin():
            if args.posts_command == "list":
                week = week_row_key(args.week) if args.week else None
                for line in list_posts(session, week, everything=args.all):
                    error = f"  {line.last_error}" if line.last_error else ""
                    print(
                        f"{line.id}\t{line.week}\t{line.platform}\t{line.account}\t{line.state}\t"
                        f"attempts={line.attempts}{error}"
                    )
                return 0
            if args.posts_command == "retry":
                post = retry(session, args.post_id)
                print(f"post {post.id} is pending again: the next social_posts run of the week posts it")
                return 0
            post = mark_published(session, args.post_id, args.remote_id, args.url)
            print(f"post {post.id} recorded as published: {post.url or post.remote_id}")
            return 0
    except (PostAdminError, ValueError) as exc:
        print(f"montage: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _seed_import(profile: Profile, args: argparse.Namespace, timezone: str) -> int:
    from montage_pipeline.platform.seed_import import ManifestError, import_engine, import_manifest

    _migrate(profile)
    engine = import_engine(profile.database_url_value())
    try:
        with Session(engine) as session, session.begin():
            result = import_manifest(
                session,
                profile.storage_root,
                args.week,
                args.manifest,
                import_root=args.import_root,
                max_file_bytes=args.max_file_mb or DEFAULT_MAX_FILE_BYTES,
                timezone=timezone,
            )
    except (ManifestError, ValueError) as exc:
        print(f"montage: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
