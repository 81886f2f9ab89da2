"""The production artifacts, checked where no Docker daemon, Compose or Helm runs (docs/deploy.md says
which checks need a builder or a cluster).

- `deploy/compose.yaml` against the Compose Specification's JSON schema, and its environment against
  what montage_pipeline's settings read (every name known, the production profile loads from it).
- `deploy/helm/values.yaml` against Dagster's chart values schema (`schemas/README.md`: an excerpt,
  verbatim, of the definitions these values use), and the k8s executor those values rely on.
- The `Dockerfile`: the build test_packaging.py proves (a `pip wheel --no-deps` wheel) installed at the
  pins, no ffmpeg, a non-root user, the production instance, and roles that start console scripts the
  installed packages really have.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import dagster as dg
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from montage_pipeline.defs.code_location import build_definitions
from montage_pipeline.defs.executors import (
    FILLS_CORES,
    FILLS_CORES_TAG,
    RENDER_POOL,
    STEP_PRELOAD,
    local_executor,
    render_pool_ops,
)
from montage_pipeline.settings import DAGSTER_INSTANCE_VARS, ENV_VARS, load_settings

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).parent / "schemas"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Read by boto3 (the S3 media store), not by our settings.
KNOWN_ENV = {*ENV_VARS, *DAGSTER_INSTANCE_VARS, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
SECRETS = (
    "DAGSTER_PG_PASSWORD",
    "MONTAGE_DATABASE_URL",
    "AWS_SECRET_ACCESS_KEY",
    "MONTAGE_TOKEN_KEYS",
    "MONTAGE_CELERY_BROKER",
)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())


def _values() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())


def _compose_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def _interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` with `env`."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":?":  # as Compose does: refuse to start without it
            raise ValueError(f"{name} is required: {rest}")
        return rest or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert _compose_errors(_compose()) == []


def test_the_compose_schema_check_catches_a_mistake() -> None:
    broken = _compose()
    broken["services"]["webserver"]["comand"] = broken["services"]["webserver"].pop("command")
    broken["services"]["worker-1"]["depends_on"]["migrate"]["condition"] = "service_done"
    errors = _compose_errors(broken)
    assert any("comand" in e for e in errors) and any("service_done" in e for e in errors), errors


def test_the_compose_file_runs_each_role_with_two_celery_workers() -> None:
    services = _compose()["services"]
    roles = {name: service.get("command", [None])[0] for name, service in services.items()}
    assert {"webserver", "daemon", "code-server", "migrate"} <= set(roles.values())
    assert sum(role == "celery-worker" for role in roles.values()) >= 2, roles
    images = {service.get("image", "").split(":")[0] for service in services.values()}
    assert {"postgres", "minio/minio", "rabbitmq"} <= images
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    (server,) = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert (
        server["host"] in services
        and server["location_name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]
    )
    assert f"-p {server['port']}" in _entrypoint_roles()["code-server"]


def test_the_compose_environment_is_what_the_settings_read_with_secrets_from_outside() -> None:
    compose = _compose()
    env = compose["x-montage-env"]
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    for service in compose["services"].values():
        if service.get("image", "").startswith("${MONTAGE_IMAGE"):
            assert service["environment"] == env
    for name in SECRETS:
        assert "${" in env[name], f"{name} is written in the compose file; it must come from the environment"
    outside = {"POSTGRES_PASSWORD": "pw", "MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"}
    resolved = {k: _interpolated(str(v), {**outside, "RABBITMQ_PASSWORD": "r"}) for k, v in env.items()}
    settings = load_settings(resolved)
    assert settings.profile.name == "production" and settings.executor.kind == "celery"
    assert settings.profile.s3 is not None and settings.profile.s3.endpoint_url == "http://minio:9000"
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD is required"):
        _interpolated(env["DAGSTER_PG_PASSWORD"], {})


# --- Helm ----------------------------------------------------------------------------------------------

# Lists replace the chart's defaults whole; maps merge into them. So `required` holds for list items,
# and for maps only once merged with the chart's own values.yaml (which Helm validates, not this file).
LIST_ITEMS = {"UserDeployment", "TagConcurrencyLimit", "TagConcurrencyLimitConfig"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _kubernetes_registry(schema: dict[str, Any]) -> Registry:
    """The chart's schema points Kubernetes objects (resources, env, probes) at kubernetesjsonschema.dev;
    offline, each resolves to `{}`: those objects are Kubernetes', not checked here."""
    documents: dict[str, dict[str, Any]] = {}
    for ref in _refs(schema):
        if ref.startswith("https://"):
            url, _, pointer = ref.partition("#")
            node = documents.setdefault(url, {})
            for part in pointer.strip("/").split("/"):
                node = node.setdefault(part, {})
    return Registry().with_resources(
        (url, Resource.from_contents(doc, default_specification=DRAFT7)) for url, doc in documents.items()
    )


def _helm_errors(values: dict[str, Any]) -> list[str]:
    schema = json.loads((SCHEMAS / "dagster-helm-values.schema.json").read_text())
    merged = copy.deepcopy(schema)
    merged.pop("required")
    for name, definition in merged["definitions"].items():
        if name not in LIST_ITEMS:
            definition.pop("required", None)
    validator = jsonschema.Draft7Validator(merged, registry=_kubernetes_registry(schema))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def test_the_helm_values_follow_the_dagster_charts_schema() -> None:
    assert _helm_errors(_values()) == []


def test_the_helm_schema_check_catches_a_mistake() -> None:
    broken = _values()
    broken["runLauncher"]["config"]["k8sRunLauncher"]["envSecret"] = [{"name": "montage-secrets"}]
    del broken["dagster-user-deployments"]["deployments"][0]["port"]
    broken["dagsterDaemon"]["runCoordinator"]["type"] = "QueueRunCoordinator"
    errors = "\n".join(_helm_errors(broken))
    assert "envSecret" in errors and "'port' is a required property" in errors
    assert "QueueRunCoordinator" in errors


def test_the_helm_values_run_our_image_and_module_with_the_k8s_executor() -> None:
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    dagster_cfg = PYPROJECT["tool"]["dagster"]
    assert deployment["dagsterApiGrpcArgs"] == [
        "--module-name",
        dagster_cfg["module_name"],
        "--location-name",
        dagster_cfg["code_location_name"],
    ]
    assert deployment["image"]["tag"] == PYPROJECT["project"]["version"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    assert env["MONTAGE_EXECUTOR"] == "k8s" and env["MONTAGE_PROFILE"] == "production"
    assert not set(SECRETS) & set(env), "secrets belong in the montage-secrets Secret"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]  # run and step pods get this env
    # The chart's version is the dagster release the package pins.
    dagster_pin = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("dagster=="))
    version = dagster_pin.split("==")[1]
    assert f"--version {version}" in (REPO / "deploy" / "helm" / "values.yaml").read_text()


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def _cpu(resources: dict[str, Any]) -> float:
    value = str(resources["requests"]["cpu"])
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def check_k8s_step_pods(home: Path | str) -> None:
    """Every step of the asset job and the weekly job, as dagster-k8s's own step handler sizes its pod:
    the render pool's steps (by the pool Dagster's execution plan gives each step) get >= 4x the
    default CPU, no other step gets an override. The code location is the one this process imported
    (`montage_pipeline.definitions`), so its MONTAGE_RENDER_CHUNKS decides the render's steps."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
    from dagster._core.execution.context_creation_job import create_context_free_log_manager
    from dagster._core.execution.plan.inputs import (
        UnresolvedCollectStepInput,
        UnresolvedMappedStepInput,
    )
    from dagster._core.execution.plan.step import (
        ExecutionStep,
        UnresolvedCollectExecutionStep,
        UnresolvedMappedExecutionStep,
    )
    from dagster._core.executor.init import InitExecutorContext
    from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
    from dagster._core.test_utils import create_run_for_test, instance_for_test
    from dagster._grpc.types import ExecuteStepArgs
    from dagster_k8s.executor import K8sStepHandler

    import montage_pipeline.definitions as location

    home = Path(home)
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher = {
        "service_account_name": "montage",
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": "dagster-postgresql-secret",
        "dagster_home": "/opt/dagster/dagster_home",
        "job_image": "montage:test",
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    overrides = {"run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}}
    with instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        for name in ("__ASSET_JOB", "weekly_montage_job"):
            job_def = location.defs.resolve_job_def(name)
            job = InMemoryJob(job_def)
            executor_def = job_def.executor_def
            assert executor_def.name == "k8s"
            schema: Any = executor_def.config_schema  # k8s_job_executor's schema with our values
            resolved = schema.resolve_config({})
            assert resolved.success, resolved.errors
            config = resolved.value["config"]
            executor: Any = executor_def.executor_creation_fn(  # type: ignore[misc]
                InitExecutorContext(
                    job=job, executor_def=executor_def, executor_config=config, instance=instance
                )
            )
            handler = executor._step_handler  # what launches each step's pod
            assert isinstance(handler, K8sStepHandler)
            plan = create_execution_plan(job)
            run = create_run_for_test(instance, job_name=name, execution_plan_snapshot=None)
            plan_context = PlanOrchestrationContext(
                plan_data=PlanData(job=job, dagster_run=run, instance=instance, execution_plan=plan),
                log_manager=create_context_free_log_manager(instance, run),
                executor=executor,
                output_capture=None,
            )
            origin = (
                ReconstructableRepository.for_module(location.__name__, "defs", str(REPO))
                .get_reconstructable_job(name)
                .get_python_origin()
            )
            default = _cpu(config["step_k8s_config"]["container_config"]["resources"])
            in_pool = set()
            for step in plan.get_all_steps_in_topo_order():
                # A mapped step (`render_chunk[chunk_0]`) exists once its upstream ran; the handler
                # sees the resolved step, whose op is the unresolved step's.
                if isinstance(step, UnresolvedMappedExecutionStep | UnresolvedCollectExecutionStep):
                    mappings: dict[str, dict[str, list[str] | None]] = {}
                    for inp in step.step_inputs:
                        if isinstance(inp, UnresolvedMappedStepInput | UnresolvedCollectStepInput):
                            by = mappings.setdefault(inp.resolved_by_step_key, {})
                            by[inp.resolved_by_output_name] = ["chunk_0"]
                    resolved = step.resolve(mappings)
                    # A mapped step resolves into a list, a collecting one into one step.
                    launched = resolved if isinstance(resolved, ExecutionStep) else resolved[0]
                else:
                    assert isinstance(step, ExecutionStep)
                    launched = step
                assert launched.op_name == step.node_handle.name
                context = StepHandlerContext(
                    instance=instance,
                    plan_context=plan_context,
                    steps=[launched],
                    execute_step_args=ExecuteStepArgs(origin, run.run_id, [launched.key]),
                    dagster_run=run,
                )
                pod = handler._get_container_context(context)
                resources = pod.run_k8s_config.container_config["resources"]
                if step.pool == RENDER_POOL:
                    in_pool.add(step.key)
                    assert launched.op_name in config["per_step_k8s_config"], (name, step.key)
                    assert _cpu(resources) >= 4 * default, (name, step.key, resources)
                else:
                    assert launched.op_name not in config["per_step_k8s_config"], (name, step.key)
                    assert _cpu(resources) == default, (name, step.key, resources)
            print(name, sorted(in_pool))


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`code` run by an interpreter of its own from the repository's root (so it can import this
    module); the test fails with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


@pytest.mark.parametrize("chunks", ["", "3"])
def test_the_k8s_executor_gives_the_render_pools_steps_more_cpu(tmp_path: Path, chunks: str) -> None:
    """The code location as the k8s deployment loads it (MONTAGE_RENDER_CHUNKS unset: the render is one
    step; =3: plan, chunk steps inside the graph-backed `montage_renders`, join), in a process of its
    own because the render's form is chosen at import."""
    env = {
        **os.environ,
        "MONTAGE_HOME": str(tmp_path / "montage"),
        "MONTAGE_EXECUTOR": "k8s",
        "MONTAGE_RENDER_CHUNKS": chunks,
    }
    code = f"from montage_pipeline_tests.test_deploy import check_k8s_step_pods as c; c({str(tmp_path)!r})"
    done = _python(code, env)
    render = "montage_renders.render_chunk[?]" if chunks else "montage_renders"
    for job in ("__ASSET_JOB", "weekly_montage_job"):
        (line,) = [line for line in done.stdout.splitlines() if line.startswith(f"{job} ")]
        assert render in line and "mixed_audio" in line, line


def test_a_leaf_op_name_in_and_outside_the_render_pool_is_refused() -> None:
    """dagster-k8s tells steps apart by leaf op name only: two graphs' `encode` ops, one in the render
    pool, would give both steps the render pod (or, keyed by graph, neither)."""

    def graph_asset(name: str, pool: str | None) -> dg.AssetsDefinition:
        @dg.op(name="encode", pool=pool)
        def encode() -> int:
            return 1

        @dg.graph_asset(name=name)
        def made() -> int:
            return encode()

        return made

    assert render_pool_ops(dg.Definitions(assets=[graph_asset("a", RENDER_POOL)])) == {"encode"}
    with pytest.raises(ValueError, match=r"\['encode'\]"):
        render_pool_ops(dg.Definitions(assets=[graph_asset("a", RENDER_POOL), graph_asset("b", None)]))


def test_local_steps_fork_from_a_server_that_imported_the_code_location_once(tmp_path: Path) -> None:
    defs = build_definitions({"MONTAGE_HOME": str(tmp_path)})  # MONTAGE_EXECUTOR's default
    executor = defs.resolve_job_def("weekly_montage_job").executor_def
    assert executor.name == "multiprocess"
    schema: Any = executor.config_schema
    resolved = schema.resolve_config({"config": {"max_concurrent": 2}})  # a run may still set it
    assert resolved.success, resolved.errors
    config = resolved.value["config"]
    assert config["max_concurrent"] == 2
    preload = config["start_method"]["forkserver"]["preload_modules"]
    assert preload == STEP_PRELOAD and all(importlib.util.find_spec(m) for m in preload)


@dg.op(tags=FILLS_CORES)
def _fills_cores_a() -> None:
    time.sleep(2)


@dg.op(tags=FILLS_CORES)
def _fills_cores_b() -> None:
    time.sleep(2)


@dg.op
def _light() -> None:
    time.sleep(2)


@dg.job(executor_def=local_executor)
def _three_independent_steps() -> None:
    _fills_cores_a()
    _fills_cores_b()
    _light()


@dg.op
def _frozen_objects() -> int:
    return gc.get_freeze_count()


@dg.job(executor_def=local_executor)
def _count_frozen_objects() -> None:
    _frozen_objects()


# Run in an interpreter of its own: a process has one fork server, and the first to start it sets what
# it preloads, so in a test worker that already started one (the analysis pool's) the run would reuse it.
_COUNT_FROZEN = """
import json
import dagster as dg
from montage_pipeline_tests.test_deploy import _count_frozen_objects

with dg.instance_for_test() as instance:
    with dg.execute_job(dg.reconstructable(_count_frozen_objects), instance) as result:
        print(json.dumps([result.success, result.output_for_node("_frozen_objects")]))
"""


def test_a_step_forked_from_the_server_finds_its_preloaded_objects_out_of_the_collectors_reach() -> None:
    """The server froze what it preloaded (`freeze_preloaded`, last in STEP_PRELOAD), and the step it
    forked inherits that: its collections leave the shared pages unwritten."""
    done = _python(_COUNT_FROZEN)
    success, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    # The server is a fresh interpreter: the count is its own, the code location, Dagster and OpenCV
    # (~270k objects); a step that inherited no freeze counts 0.
    assert success and frozen > 100_000, frozen


def _step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) time, as Dagster's UI reads them from the run's event log."""
    return {
        stats.step_key: (stats.start_time, stats.end_time)
        for stats in instance.get_run_step_stats(run_id)
        if stats.start_time is not None and stats.end_time is not None
    }


@pytest.mark.parametrize(
    ("filled", "apart"),
    [(None, True), (1, True), (0, False)],
    ids=["default", "one-at-a-time", "side-by-side"],
)
def test_the_local_executor_runs_one_core_filling_step_at_a_time_beside_lighter_ones(
    filled: int | None, apart: bool
) -> None:
    """The render and the soundtrack each fill the cores (`FILLS_CORES`): by default (and with
    `cores_filled_at_once: 1`) the local executor starts the second only when the first has ended, while
    a step without the tag still runs beside either; `cores_filled_at_once: 0` lifts the limit. Checked
    on a real multiprocess run (steps forked from the preloaded server)."""
    defs = build_definitions({})
    assert defs.resolve_job_def("weekly_montage_job").executor_def.name == "multiprocess"
    tagged = {
        node.name
        for node in defs.resolve_job_def("__ASSET_JOB").graph.node_defs
        if node.tags.get(FILLS_CORES_TAG) == "true"
    }
    assert tagged == {"montage_renders", "soundtrack"}
    executor: dict[str, int] = {"max_concurrent": 3}
    if filled is not None:
        executor["cores_filled_at_once"] = filled
    with dg.instance_for_test() as instance:
        config = {"execution": {"config": executor}}
        with dg.execute_job(
            dg.reconstructable(_three_independent_steps), instance, run_config=config
        ) as result:
            assert result.success
            windows = _step_windows(instance, result.run_id)
    a, b, light = (windows[k] for k in ("_fills_cores_a", "_fills_cores_b", "_light"))
    first, second = sorted([a, b])
    assert (second[0] >= first[1]) is apart, windows  # the second core-filling step waited for the first
    assert light[0] < first[1] and first[0] < light[1], windows  # the light one ran beside the first


# --- Dockerfile ----------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _entrypoint_roles() -> dict[str, str]:
    """Role → the command docker-entrypoint.sh runs for it."""
    script = (REPO / "deploy" / "docker-entrypoint.sh").read_text().replace("\\\n", " ")
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\s*([\w-]+)\)\s*shift;\s*exec\s+(.+?)\s*;;", script, re.M)
    }


def test_the_image_installs_the_wheel_test_packaging_proves_at_the_pins_without_ffmpeg() -> None:
    steps = _dockerfile()
    stages = [args for op, args in steps if op == "FROM"]
    assert [s.split()[0] for s in stages] == ["python:3.11-slim-bookworm"] * 2
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "pip wheel --no-deps" in runs  # what test_the_code_location_loads_from_an_installed_wheel builds
    assert "-c constraints.txt" in runs and "[k8s]" in runs
    assert "k8s" in PYPROJECT["project"]["optional-dependencies"]
    assert "ffmpeg" not in runs.lower()  # PyAV's wheels carry FFmpeg's libraries
    copied = [args.split()[-2] for op, args in steps if op == "COPY" and "--from" not in args]
    for source in copied:
        assert (REPO / source).exists(), source
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env"} <= set(ignored)
    assert not {"montage_pipeline", "constraints.txt", "pyproject.toml"} & set(ignored)


def test_the_image_runs_as_a_user_with_the_production_instance() -> None:
    steps = _dockerfile()
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [args for op, args in runtime if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = " ".join(args for op, args in runtime if op == "ENV")
    home = re.search(r"DAGSTER_HOME=(\S+)", env)
    assert home and "MONTAGE_PROFILE=production" in env
    assert f"COPY dagster.yaml {home.group(1)}/dagster.yaml" in [f"{op} {args}" for op, args in runtime]
    assert "postgres" in yaml.safe_load((REPO / "dagster.yaml").read_text())["storage"]


def test_each_role_of_the_image_starts_a_console_script_that_is_installed() -> None:
    roles = _entrypoint_roles()
    assert {"webserver", "daemon", "code-server", "celery-worker", "migrate"} <= set(roles)
    scripts = {ep.name for ep in metadata.entry_points(group="console_scripts")}
    for role, command in roles.items():
        assert shlex.split(command)[0] in scripts, (role, command)
    assert "montage" in PYPROJECT["project"]["scripts"]
    code_server = shlex.split(roles["code-server"])
    assert code_server[code_server.index("-m") + 1] == PYPROJECT["tool"]["dagster"]["module_name"]
    location = code_server[code_server.index("--location-name") + 1]
    assert location == PYPROJECT["tool"]["dagster"]["code_location_name"]
    assert "celery_worker.yaml" in roles["celery-worker"]
    entrypoint = next(args for op, args in _dockerfile() if op == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/opt/dagster/app/docker-entrypoint.sh"]


@pytest.mark.slow
def test_the_code_server_role_serves_the_code_location(tmp_path: Path) -> None:
    """The image's default role, run by its entrypoint script with this venv's scripts on PATH (no
    Docker here): a gRPC code server answering under the project's code location name."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MONTAGE_HOME": str(tmp_path / "montage"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    log = tmp_path / "code-server.log"
    entrypoint = str(REPO / "deploy" / "docker-entrypoint.sh")
    with log.open("wb") as out:
        # Later options win: a free port on loopback instead of the image's 0.0.0.0:4000.
        server = subprocess.Popen(
            ["sh", entrypoint, "code-server", "-h", "127.0.0.1", "-p", port],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        check = [str(bin_dir / "dagster"), "api", "grpc-health-check", "-p", port]
        for _ in range(120):
            if subprocess.run(check, env=env, capture_output=True, check=False).returncode == 0:
                break
            assert server.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        else:
            raise AssertionError(log.read_text()[-3000:])
        text = log.read_text()
        assert "Started Dagster code server for module montage_pipeline.definitions" in text, text[-3000:]
        assert "does not match the name" not in text, text[-3000:]  # served as `montage_pipeline`
    finally:  # the whole group: the code server and the gRPC server it starts
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
