"""The deployment configs, checked with Ray's own validators (no running Ray needed).

- cluster.yaml: what `ray up` does before it touches the cloud (fill in the provider's
  defaults, then validate against ray/autoscaler/ray-schema.json and Ray's extra rules),
  plus the raw file against the schema, plus what this project needs from it.
- deploy/serve_config.yaml and the serveConfigV2 of deploy/rayservice.yaml: Serve's
  ServeDeploySchema. That schema silently drops keys it does not know, so every key is
  also checked against the schema's fields here.
"""

from __future__ import annotations

import ast
import copy
import json
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from pydantic import BaseModel, ValidationError
from ray.serve.schema import ServeDeploySchema

from serve_app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
SERVE_CONFIG = ROOT / "deploy" / "serve_config.yaml"
RAYSERVICE = ROOT / "deploy" / "rayservice.yaml"

IMPORT_PATH = "serve_app.app:build_app"
APP_NAME = "reasoning"
INGRESS = "ReasoningIngress"
REMOTE_PROJECT_DIR = "~/reasoning-service"
CLUSTER_HOME = "/mnt/shared/reasoning"
IMAGE_PLACEHOLDER = "your-registry/reasoning-service:latest"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- cluster.yaml


def _ray_cluster_schema() -> dict[str, Any]:
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    return json.loads(path.read_text())


def validate_cluster_config(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate like `ray up` does before any cloud call; returns the prepared config.

    Raises jsonschema.ValidationError or ValueError/RuntimeError on a bad config.
    """
    # The raw file first: once the defaults are merged in, an error can hide behind them.
    jsonschema.validate(raw, _ray_cluster_schema())
    # Ray's private helpers, on purpose: they are what `ray up` runs. If Ray moves them,
    # this fails loudly rather than checking less.
    from ray.autoscaler._private.util import prepare_config, validate_config

    # validate_config alone rejects any file: it insists on `cluster_synced_files`, which
    # only prepare_config's defaults fill in (the error blames a Ray version mismatch).
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return _load(CLUSTER_YAML)


def test_cluster_yaml_passes_ray_validation(cluster: dict[str, Any]) -> None:
    prepared = validate_cluster_config(cluster)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["provider"].get("region")
    assert prepared["auth"]["ssh_user"] == "ubuntu"


def test_cluster_has_head_and_autoscaling_cpu_workers(cluster: dict[str, Any]) -> None:
    types = cluster["available_node_types"]
    head = cluster["head_node_type"]
    assert head in types
    workers = {name: spec for name, spec in types.items() if name != head}
    assert workers, "no worker node type"
    autoscaling = {
        name: spec
        for name, spec in workers.items()
        if spec.get("min_workers", 0) == 0
        and spec.get("max_workers", cluster["max_workers"]) > spec.get("min_workers", 0)
    }
    assert autoscaling, f"no worker group scales from 0 upwards: {workers}"
    for spec in autoscaling.values():
        assert "GPU" not in spec.get("resources", {})
        assert spec.get("max_workers", 0) <= cluster["max_workers"]


def test_cluster_setup_installs_the_project(cluster: dict[str, Any]) -> None:
    local = cluster["file_mounts"][REMOTE_PROJECT_DIR]
    project = (CLUSTER_YAML.parent / local).resolve()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "reasoning-service"
    assert "reasoning" in pyproject["project"]["scripts"]

    installs = [
        shlex.split(cmd) for cmd in cluster["setup_commands"] if "pip" in cmd and "install" in cmd
    ]
    assert any(REMOTE_PROJECT_DIR in argv for argv in installs), cluster["setup_commands"]
    # The local venv and service home must not be uploaded to every node.
    assert ".venv" in cluster.get("rsync_exclude", [])


def _serve_argv(command: str) -> list[str] | None:
    argv = shlex.split(command)
    for i in range(len(argv) - 1):
        if argv[i : i + 2] == ["reasoning", "serve"]:
            end = i + 2
            while end < len(argv) and argv[end] not in {">", ">>", "&", ";", "&&", "<"}:
                end += 1
            return argv[i + 2 : end]
    return None


def _options(argv: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        assert token.startswith("--"), argv
        if "=" in token:
            key, value = token.split("=", 1)
        else:
            key, value = token, next(it)
        opts[key] = value
    return opts


def test_head_starts_ray_then_the_service(cluster: dict[str, Any]) -> None:
    cmds: list[str] = cluster["head_start_ray_commands"]
    stop = next(i for i, c in enumerate(cmds) if "ray stop" in c)
    start = next(i for i, c in enumerate(cmds) if "ray start" in c and "--head" in c)
    serve = next(i for i, c in enumerate(cmds) if _serve_argv(c) is not None)
    assert stop < start < serve
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in cmds[start]
    assert "--port=6379" in cmds[start]

    opts = _options(_serve_argv(cmds[serve]) or [])
    assert opts["--address"] == "auto"
    assert opts["--home"] == CLUSTER_HOME
    assert opts["--port"] == "8000"
    # Listening beyond loopback needs authentication (the service refuses otherwise).
    assert opts["--host"] == "0.0.0.0" and opts["--auth-mode"] == "token"
    # It must run in the background, or `ray up` never returns.
    assert "nohup" in cmds[serve] and " &" in cmds[serve]


def test_workers_join_the_head(cluster: dict[str, Any]) -> None:
    cmds = cluster["worker_start_ray_commands"]
    assert any("ray start" in c and "--address=$RAY_HEAD_IP:6379" in c for c in cmds)
    assert not any("reasoning serve" in c for c in cmds)


def test_cluster_commands_are_valid_shell(cluster: dict[str, Any]) -> None:
    keys = [k for k in cluster if k.endswith("_commands")]
    assert "setup_commands" in keys
    for key in keys:
        for cmd in cluster[key]:
            proc = subprocess.run(
                ["bash", "-n", "-c", cmd], capture_output=True, text=True, check=False
            )
            assert proc.returncode == 0, f"{key}: {cmd!r}: {proc.stderr}"


def _typo_top_level(c: dict[str, Any]) -> None:
    c["max_worker"] = c.pop("max_workers")


def _node_type_without_resources(c: dict[str, Any]) -> None:
    del c["available_node_types"][c["head_node_type"]]["resources"]


def _unknown_head_type(c: dict[str, Any]) -> None:
    c["head_node_type"] = "ray.head.missing"


def _min_workers_as_text(c: dict[str, Any]) -> None:
    workers = [n for n in c["available_node_types"] if n != c["head_node_type"]]
    c["available_node_types"][workers[0]]["min_workers"] = "0"


def _command_not_a_list(c: dict[str, Any]) -> None:
    c["setup_commands"] = "pip install ~/reasoning-service"


def _min_above_global_max(c: dict[str, Any]) -> None:
    workers = [n for n in c["available_node_types"] if n != c["head_node_type"]]
    c["available_node_types"][workers[0]]["min_workers"] = c["max_workers"] + 1


def _no_cluster_name(c: dict[str, Any]) -> None:
    del c["cluster_name"]


@pytest.mark.parametrize(
    "breakage",
    [
        _typo_top_level,
        _node_type_without_resources,
        _unknown_head_type,
        _min_workers_as_text,
        _command_not_a_list,
        _min_above_global_max,
        _no_cluster_name,
    ],
)
def test_broken_cluster_yaml_is_rejected(cluster: dict[str, Any], breakage) -> None:
    broken = copy.deepcopy(cluster)
    breakage(broken)
    with pytest.raises((jsonschema.ValidationError, ValueError, RuntimeError)):
        validate_cluster_config(broken)


# ------------------------------------------------------------------------ Serve configs


def unknown_keys(raw: Any, model: Any, where: str = "") -> list[str]:
    """Keys of `raw` that the validated pydantic `model` has no field for (recursively)."""
    if isinstance(model, list) and isinstance(raw, list):
        return [
            key
            for i, (r, m) in enumerate(zip(raw, model, strict=False))
            for key in unknown_keys(r, m, f"{where}[{i}]")
        ]
    if not (isinstance(model, BaseModel) and isinstance(raw, dict)):
        return []
    fields = type(model).model_fields
    names = {alias: name for name, f in fields.items() for alias in (name, f.alias) if alias}
    found: list[str] = []
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            found.append(path)
        else:
            found += unknown_keys(value, getattr(model, names[key]), path)
    return found


def validate_serve_config(raw: Any) -> ServeDeploySchema:
    """Serve's own validation, made strict about unknown keys."""
    if hasattr(ServeDeploySchema, "model_validate"):
        config = ServeDeploySchema.model_validate(raw)
    else:  # pragma: no cover - pydantic v1 era Ray
        config = ServeDeploySchema.parse_obj(raw)
    extra = unknown_keys(raw, config)
    if extra:
        raise ValueError(f"keys unknown to Ray Serve (silently ignored by it): {extra}")
    return config


def _check_reasoning_app(config: ServeDeploySchema) -> Any:
    assert [app.name for app in config.applications] == [APP_NAME]
    app = config.applications[0]
    assert app.route_prefix == "/"
    assert app.import_path == IMPORT_PATH
    assert set(app.args) <= set(Settings.model_fields)
    assert isinstance(app.args["home"], str) and app.args["home"]
    ingress = {d.name: d for d in app.deployments}[INGRESS]
    assert ingress.ray_actor_options.num_cpus == 0
    return app


@pytest.fixture(scope="module")
def serve_config() -> dict[str, Any]:
    return _load(SERVE_CONFIG)


def test_serve_config_passes_serve_schema(serve_config: dict[str, Any]) -> None:
    config = validate_serve_config(serve_config)
    assert config.http_options.host == "127.0.0.1"
    assert config.http_options.port == 8000
    app = _check_reasoning_app(config)
    assert app.args["home"] == "./.reasoning"


def test_import_path_names_the_app_builder() -> None:
    module, _, attr = IMPORT_PATH.partition(":")
    source = ROOT / Path(*module.split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attr in defined, f"{source.name} defines no {attr}"


def _typo_deployment_key(c: dict[str, Any]) -> None:
    dep = c["applications"][0]["deployments"][0]
    dep["ray_actor_option"] = dep.pop("ray_actor_options")


def _typo_top_level_serve_key(c: dict[str, Any]) -> None:
    c["http_option"] = c.pop("http_options")


def _bad_import_path(c: dict[str, Any]) -> None:
    c["applications"][0]["import_path"] = "serve_app:app:build_app"


def _no_import_path(c: dict[str, Any]) -> None:
    del c["applications"][0]["import_path"]


def _cpus_not_a_number(c: dict[str, Any]) -> None:
    c["applications"][0]["deployments"][0]["ray_actor_options"]["num_cpus"] = "none"


def _port_in_app(c: dict[str, Any]) -> None:
    c["applications"][0]["port"] = 8001


def _duplicate_app(c: dict[str, Any]) -> None:
    c["applications"].append(copy.deepcopy(c["applications"][0]))


@pytest.mark.parametrize(
    "breakage",
    [
        _typo_deployment_key,
        _typo_top_level_serve_key,
        _bad_import_path,
        _no_import_path,
        _cpus_not_a_number,
        _port_in_app,
        _duplicate_app,
    ],
)
def test_broken_serve_config_is_rejected(serve_config: dict[str, Any], breakage) -> None:
    broken = copy.deepcopy(serve_config)
    breakage(broken)
    with pytest.raises((ValidationError, ValueError)):
        validate_serve_config(broken)


# ---------------------------------------------------------------------- rayservice.yaml


@pytest.fixture(scope="module")
def rayservice() -> dict[str, Any]:
    return _load(RAYSERVICE)


def _containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    return group["template"]["spec"]["containers"]


def test_rayservice_is_a_kuberay_rayservice(rayservice: dict[str, Any]) -> None:
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice["kind"] == "RayService"
    assert rayservice["metadata"]["name"]


def test_rayservice_serve_config_matches_serve_config(
    rayservice: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    text = rayservice["spec"]["serveConfigV2"]
    assert isinstance(text, str), "serveConfigV2 is a YAML string in KubeRay v1"
    config = validate_serve_config(yaml.safe_load(text))
    app = _check_reasoning_app(config)
    assert app.args["home"].startswith("/"), "home must be an absolute shared path"
    # It listens on every pod interface, so it must not run without authentication.
    assert config.http_options.host == "0.0.0.0" and app.args["auth_mode"] == "token"

    # Same application apart from its args (the home differs: shared volume vs local).
    def without_args(application: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in application.items() if k != "args"}

    ours = yaml.safe_load(text)["applications"][0]
    assert without_args(ours) == without_args(serve_config["applications"][0])


def test_rayservice_cluster_shape(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    workers = cluster["workerGroupSpecs"]
    assert workers
    assert any(g["maxReplicas"] > g.get("minReplicas", 0) for g in workers)
    for group in [head, *workers]:
        # KubeRay's rayStartParams is map[string]string: numbers must be quoted.
        params = group.get("rayStartParams", {})
        assert all(isinstance(v, str) for v in params.values()), params
        for container in _containers(group):
            assert container["image"] == IMAGE_PLACEHOLDER
            assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})

    # The service home sits on a volume that every pod mounts.
    home = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0]["args"]
    for group in [head, *workers]:
        mounts = [m["mountPath"] for c in _containers(group) for m in c.get("volumeMounts", [])]
        assert any(home["home"].startswith(m.rstrip("/") + "/") for m in mounts), mounts


def test_broken_rayservice_serve_config_is_rejected(rayservice: dict[str, Any]) -> None:
    config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    config["applications"][0]["deployments"][0]["num_cpu"] = 0
    with pytest.raises(ValueError):
        validate_serve_config(config)
