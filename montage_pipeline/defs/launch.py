"""Launching a week's run on a running Dagster deployment, through its GraphQL API (the webserver's
`/graphql`), the same way the UI does. The read API's trigger route calls this; it never imports
Dagster itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

JOB_NAME = "weekly_montage_job"
REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a `Definitions` object
GRAPHQL_TIMEOUT_S = 30


class LaunchError(RuntimeError):
    """Dagster did not launch the run; the message says why."""


def launch_week(graphql_url: str, code_location: str, week: str, tags: dict[str, str]) -> str:
    """Submit `weekly_montage_job` for `week` in `code_location`; returns the run id."""
    # Imported here: it pulls in all of Dagster, which loading the definitions never needs.
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    parts = urlsplit(graphql_url)
    client = DagsterGraphQLClient(
        parts.hostname or "127.0.0.1",
        port_number=parts.port,
        use_https=parts.scheme == "https",
        timeout=GRAPHQL_TIMEOUT_S,
        path_prefix=parts.path.removesuffix("/").removesuffix("/graphql"),
    )
    try:
        # Both names pin the location: with only one, the client ignores it and looks the job up.
        return client.submit_job_execution(
            JOB_NAME,
            repository_location_name=code_location,
            repository_name=REPOSITORY_NAME,
            tags={"dagster/partition": week, **tags},
        )
    except DagsterGraphQLClientError as exc:
        # A transport failure's own message is the useful part; the client's wraps it in the query.
        cause = exc.__cause__
        raise LaunchError(str(cause) if cause else ": ".join(str(arg) for arg in exc.args)) from None
