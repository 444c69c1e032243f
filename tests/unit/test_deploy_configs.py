"""The deployment configs, checked with Ray's own validators (no running Ray needed).

- cluster.yaml: what `ray up` does before it touches the cloud (fill in the provider's
  defaults, then validate against ray/autoscaler/ray-schema.json and Ray's extra rules),
  plus the raw file against the schema, plus what this project needs from it.
- deploy/serve_config.yaml and the serveConfigV2 of deploy/rayservice.yaml: Serve's
  ServeDeploySchema. That schema silently drops keys it does not know, so every key is
  also checked against the schema's fields here (autoscaling_config, a plain dict to the
  schema, against Serve's AutoscalingConfig).
- The stores: the clusters use PostgreSQL and S3, no shared disk, and one service secret
  that every node or pod reads at the same path (created on every node by cluster.yaml's
  setup, mounted from a Kubernetes Secret in every pod of rayservice.yaml).
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from pydantic import BaseModel, ValidationError
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import ServeDeploySchema
from sqlalchemy.engine import make_url

from reasoning.service.artifacts import AWS_VARIABLES
from reasoning.service.stores import Stores
from serve_app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
SERVE_CONFIG = ROOT / "deploy" / "serve_config.yaml"
RAYSERVICE = ROOT / "deploy" / "rayservice.yaml"

IMPORT_PATH = "serve_app.app:build_app"
APP_NAME = "reasoning"
INGRESS = "ReasoningIngress"
REMOTE_PROJECT_DIR = "~/reasoning-service"
IMAGE_PLACEHOLDER = "your-registry/reasoning-service:latest"
STORE_SCHEME = "postgresql+psycopg://"
ENV_FILE = "~/reasoning.env"
SECRET_KEY_BYTES = 32


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _header(path: Path) -> str:
    """The file's leading comment block, without the `#`s (where the setup is documented)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.removeprefix("#").removeprefix(" "))
    # Shell continuation lines joined, so a documented command is one line.
    return re.sub(r"\\\n\s*", " ", "\n".join(lines))


def _walk_keys(node: Any) -> set[str]:
    """Every mapping key anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _walk_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _walk_keys(v)}
    return set()


# Volume types that would mean a shared home again.
SHARED_VOLUMES = {"persistentVolumeClaim", "nfs", "hostPath"}


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
    assert opts["--port"] == "8000"
    # Listening beyond loopback needs authentication (the service refuses otherwise).
    assert opts["--host"] == "0.0.0.0" and opts["--auth-mode"] == "token"
    # The ingress replicas are stateless: more than one.
    assert int(opts["--replicas"]) > 1
    # No home on shared storage: the stores come from the node's env file, loaded first.
    assert "--home" not in opts
    assert cmds[serve].index(f". {ENV_FILE}") < cmds[serve].index("reasoning serve")
    # It must run in the background, or `ray up` never returns; its pid is recorded, and a
    # previous one stopped before Ray restarts.
    assert "nohup" in cmds[serve] and " &" in cmds[serve]
    assert "~/reasoning.pid" in cmds[serve]
    assert any("kill" in c and "~/reasoning.pid" in c for c in cmds[:stop])


def test_ray_dashboard_stays_on_the_head(cluster: dict[str, Any]) -> None:
    """The dashboard runs submitted jobs: loopback only (reached with `ray dashboard`)."""
    start = next(c for c in cluster["head_start_ray_commands"] if "ray start" in c)
    assert "--dashboard-host=127.0.0.1" in start
    for key in [k for k in cluster if k.endswith("_commands")]:
        for cmd in cluster[key]:
            argv = shlex.split(cmd)
            hosts = [a.split("=", 1)[1] for a in argv if a.startswith("--dashboard-host=")]
            hosts += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--dashboard-host"]
            assert all(h in {"127.0.0.1", "localhost"} for h in hosts), (key, cmd)
    # Ray's default security group (only SSH from outside) is kept: no group of our own
    # and no extra inbound rules.
    assert "security_group" not in cluster["provider"]
    for spec in cluster["available_node_types"].values():
        assert "SecurityGroupIds" not in spec["node_config"]
        assert "NetworkInterfaces" not in spec["node_config"]
    assert "security group" in _header(CLUSTER_YAML)
    assert "SSH" in _header(CLUSTER_YAML)


def test_cluster_has_no_shared_home(cluster: dict[str, Any]) -> None:
    commands = "\n".join(c for k in cluster if k.endswith("_commands") for c in cluster[k])
    for gone in ("mount -t nfs", "nfs-common", "EFS_DNS", "/mnt/shared", "--home"):
        assert gone not in commands
    # Only the project itself is copied to the nodes (no state by file_mounts).
    assert set(cluster["file_mounts"]) == {REMOTE_PROJECT_DIR}


def test_every_node_reaches_s3_with_its_instance_profile(cluster: dict[str, Any]) -> None:
    # No AWS keys anywhere in the file: every node type has an instance profile.
    for name, spec in cluster["available_node_types"].items():
        profile = spec["node_config"].get("IamInstanceProfile", {})
        assert profile.get("Name") or profile.get("Arn"), f"{name}: no IamInstanceProfile"
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\s*=", text)
    # The permissions the profiles need are documented.
    header = _header(CLUSTER_YAML)
    for action in ("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                   "ssm:GetParameter", "iam:PassRole"):
        assert action in header, action


def _settings_command(cluster: dict[str, Any]) -> str:
    """The setup command that writes the node's env file and service secret."""
    found = [c for c in cluster["setup_commands"] if "REASONING_STORE" in c]
    assert len(found) == 1, cluster["setup_commands"]
    # setup_commands run on every node (head and workers): the secret is on each of them.
    for key in ("head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                "worker_start_ray_commands"):
        assert not any("REASONING_STORE" in c for c in cluster.get(key, [])), key
    return found[0]


def _ssm_parameters(header: str) -> dict[str, str]:
    """The SSM parameters the header tells the user to create: name -> example value."""
    found = {}
    for line in header.splitlines():
        if "aws ssm put-parameter" in line:
            argv = shlex.split(line.strip())
            found[argv[argv.index("--name") + 1]] = argv[argv.index("--value") + 1]
    return found


@pytest.fixture
def node(cluster: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run the settings setup commands in a scratch HOME, with SSM answering from the
    parameters documented in the header; returns the node's resulting environment."""
    parameters = _ssm_parameters(_header(CLUSTER_YAML))
    secret = os.urandom(SECRET_KEY_BYTES)
    values = {
        name: base64.b64encode(secret).decode() if "openssl rand" in value else value
        for name, value in parameters.items()
    }
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "boto3.py").write_text(
        "import json\n"
        f"VALUES = json.loads({json.dumps(json.dumps(values))})\n"
        "class _SSM:\n"
        "    def get_parameter(self, Name, WithDecryption=False):\n"
        "        assert WithDecryption\n"
        "        return {'Parameter': {'Value': VALUES[Name]}}\n"
        "def client(service, region_name=None):\n"
        "    assert service == 'ssm' and region_name\n"
        "    return _SSM()\n"
    )
    (stub / "python").symlink_to(sys.executable)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": f"{stub}:{os.environ['PATH']}", "PYTHONPATH": str(stub)}
    commands = [_settings_command(cluster)]
    commands += [c for c in cluster["setup_commands"] if ".bashrc" in c and "reasoning.env" in c]
    for cmd in commands:
        proc = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    # What a login shell on the node (ray start, reasoning serve, ray exec) sees.
    proc = subprocess.run(
        ["bash", "-c", "source ~/.bashrc; env -0"], env=env, capture_output=True, text=True,
        check=True,
    )
    seen = dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)
    return {"home": home, "env": seen, "secret": secret}


def test_cluster_nodes_get_the_stores_and_the_secret(node: dict[str, Any]) -> None:
    env, home = node["env"], node["home"]
    assert env["REASONING_STORE"].startswith(STORE_SCHEME)
    assert env["REASONING_ARTIFACTS"].startswith("s3://")
    assert env.get("AWS_REGION")
    key_file = Path(env["REASONING_SECRET_KEY_FILE"])
    # Under the ssh user's home: the same path on every node.
    assert key_file.parent == home
    assert key_file.read_bytes() == node["secret"]
    for private in (key_file, home / "reasoning.env"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    # The service accepts these stores and keeps nothing under its home.
    settings = Settings(
        store=env["REASONING_STORE"], artifacts=env["REASONING_ARTIFACTS"],
        secret_key_file=env["REASONING_SECRET_KEY_FILE"],
    )
    assert not settings.stores().uses_home


def test_cluster_setup_fails_without_the_secret(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    """A missing SSM parameter (or a secret of the wrong size) fails `ray up`."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "boto3.py").write_text(
        "class _SSM:\n"
        "    def get_parameter(self, Name, WithDecryption=False):\n"
        "        if 'secret' in Name:\n"
        "            raise KeyError(Name)\n"
        "        return {'Parameter': {'Value': 'postgresql+psycopg://u:p@h/db'}}\n"
        "def client(service, region_name=None):\n"
        "    return _SSM()\n"
    )
    (stub / "python").symlink_to(sys.executable)
    env = {"HOME": str(tmp_path), "PATH": f"{stub}:{os.environ['PATH']}",
           "PYTHONPATH": str(stub)}
    proc = subprocess.run(
        ["bash", "-c", _settings_command(cluster)], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert not (tmp_path / "reasoning.env").exists()


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
    # The schema takes autoscaling_config as any dict: Serve checks it only when it
    # deploys, so check it here the way Serve will.
    for i, app in enumerate(raw.get("applications", [])):
        for j, deployment in enumerate(app.get("deployments", [])):
            autoscaling = deployment.get("autoscaling_config")
            if isinstance(autoscaling, dict):
                model = AutoscalingConfig.model_validate(autoscaling)
                where = f"applications[{i}].deployments[{j}].autoscaling_config"
                extra += unknown_keys(autoscaling, model, where)
    if extra:
        raise ValueError(f"keys unknown to Ray Serve (silently ignored by it): {extra}")
    return config


def _check_reasoning_app(config: ServeDeploySchema) -> Any:
    assert [app.name for app in config.applications] == [APP_NAME]
    app = config.applications[0]
    assert app.route_prefix == "/"
    assert app.import_path == IMPORT_PATH
    # build_app takes Settings' fields: anything else would fail, or be a typo.
    assert set(app.args) <= set(Settings.model_fields), set(app.args) - set(Settings.model_fields)
    Settings.model_validate(app.args)  # and values of the right types
    ingress = {d.name: d for d in app.deployments}[INGRESS]
    assert ingress.ray_actor_options.num_cpus == 0
    # The replicas are stateless: Serve scales them (build_app fixes num_replicas in code
    # only for replicas > 1, which would fight the autoscaler).
    autoscaling = AutoscalingConfig.model_validate(ingress.autoscaling_config)
    assert 1 <= autoscaling.min_replicas < autoscaling.max_replicas
    assert autoscaling.target_ongoing_requests > 1
    assert int(app.args.get("replicas", 1)) == 1
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
    # One machine: the default stores under the home.
    assert Stores.resolve(app.args["home"]).uses_home


def test_serve_config_shows_the_remote_stores() -> None:
    """The cluster args are there, commented, next to `home`; uncommented they are valid."""
    text = SERVE_CONFIG.read_text()
    commented = {}
    for line in text.splitlines():
        match = re.match(r"\s*#\s*(store|artifacts|secret_key_file):\s*(\S+)", line)
        if match:
            commented[match[1]] = match[2]
    assert set(commented) == {"store", "artifacts", "secret_key_file"}
    assert commented["store"].startswith(STORE_SCHEME)
    assert commented["artifacts"].startswith("s3://")
    assert not Settings(home="./.reasoning", **commented).stores().uses_home


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


def _typo_autoscaling_key(c: dict[str, Any]) -> None:
    autoscaling = c["applications"][0]["deployments"][0]["autoscaling_config"]
    autoscaling["max_replica"] = autoscaling.pop("max_replicas")


def _autoscaling_max_below_min(c: dict[str, Any]) -> None:
    c["applications"][0]["deployments"][0]["autoscaling_config"]["max_replicas"] = 0


def _autoscaling_target_not_a_number(c: dict[str, Any]) -> None:
    c["applications"][0]["deployments"][0]["autoscaling_config"]["target_ongoing_requests"] = "x"


def _num_replicas_with_autoscaling(c: dict[str, Any]) -> None:
    c["applications"][0]["deployments"][0]["num_replicas"] = 2


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
        _typo_autoscaling_key,
        _autoscaling_max_below_min,
        _autoscaling_target_not_a_number,
        _num_replicas_with_autoscaling,
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


def _serve_args(rayservice: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0]["args"]


def _groups(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def _documented_secrets(header: str) -> dict[str, dict[str, str | None]]:
    """The `kubectl create secret generic` commands of the header: name -> {key: value}
    (None for a key made from a file)."""
    secrets: dict[str, dict[str, str | None]] = {}
    for line in header.splitlines():
        if "kubectl create secret generic" not in line:
            continue
        argv = shlex.split(line[line.index("kubectl") :])
        keys: dict[str, str | None] = {}
        for token in argv[5:]:
            if token in {"&&", ";", "||", "|"}:
                break
            token = token.strip("[]")
            if token.startswith("--from-literal="):
                key, value = token.removeprefix("--from-literal=").split("=", 1)
                keys[key] = value
            elif token.startswith("--from-file="):
                source = token.removeprefix("--from-file=")
                keys[source.split("=", 1)[0] if "=" in source else Path(source).name] = None
        secrets[argv[4]] = keys
    return secrets


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def test_rayservice_serve_config_matches_serve_config(
    rayservice: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    text = rayservice["spec"]["serveConfigV2"]
    assert isinstance(text, str), "serveConfigV2 is a YAML string in KubeRay v1"
    config = validate_serve_config(yaml.safe_load(text))
    app = _check_reasoning_app(config)
    # It listens on every pod interface, so it must not run without authentication.
    assert config.http_options.host == "0.0.0.0" and app.args["auth_mode"] == "token"
    assert app.args["artifacts"].startswith("s3://")
    assert app.args["secret_key_file"].startswith("/")
    # The database URL holds a password: it comes from a Secret, never from this resource.
    if "store" in app.args:
        assert make_url(app.args["store"]).password is None

    # Same application apart from its args (the stores differ: remote vs local).
    def without_args(application: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in application.items() if k != "args"}

    ours = yaml.safe_load(text)["applications"][0]
    assert without_args(ours) == without_args(serve_config["applications"][0])


def test_rayservice_cluster_shape(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    workers = cluster["workerGroupSpecs"]
    assert workers
    assert any(g["maxReplicas"] > g.get("minReplicas", 0) for g in workers)
    for group in _groups(rayservice):
        # KubeRay's rayStartParams is map[string]string: numbers must be quoted.
        params = group.get("rayStartParams", {})
        assert all(isinstance(v, str) for v in params.values()), params
        for container in _containers(group):
            assert container["image"] == IMAGE_PLACEHOLDER
            assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})


def test_rayservice_has_no_shared_volume(rayservice: dict[str, Any]) -> None:
    assert not _walk_keys(rayservice) & SHARED_VOLUMES
    assert "PersistentVolumeClaim" not in _header(RAYSERVICE)
    for group in _groups(rayservice):
        for container in _containers(group):
            assert "REASONING_HOME" not in _env(container)
    assert "home" not in _serve_args(rayservice)


def test_rayservice_pods_get_the_stores_from_secrets(
    rayservice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _serve_args(rayservice)
    secrets = _documented_secrets(_header(RAYSERVICE))
    key_file = Path(args["secret_key_file"])
    for group in _groups(rayservice):
        pod = group["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in _containers(group):
            env = _env(container)
            # The metadata store: from a Secret the header tells how to create.
            ref = env["REASONING_STORE"]["valueFrom"]["secretKeyRef"]
            url = secrets[ref["name"]][ref["key"]]
            assert url and url.startswith(STORE_SCHEME), url
            # The same artifact store and secret file as the app's args (for the CLI).
            assert env["REASONING_ARTIFACTS"]["value"] == args["artifacts"]
            assert env["REASONING_SECRET_KEY_FILE"]["value"] == args["secret_key_file"]
            # The secret file: mounted from a Secret in this pod, at that path.
            mount = next(
                m for m in container.get("volumeMounts", [])
                if m["mountPath"].rstrip("/") == str(key_file.parent)
            )
            source = volumes[mount["name"]]["secret"]
            items = {i["path"]: i["key"] for i in source.get("items", [])}
            key = items.get(key_file.name, key_file.name) if items else key_file.name
            assert key in secrets[source["secretName"]], (source, secrets)
            assert mount.get("readOnly") is True
            # S3 credentials: a Secret of AWS variables, or the pod's service account
            # (IRSA); never keys written into this file.
            from_secrets = [
                e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e
            ]
            assert pod.get("serviceAccountName") or any(
                name in secrets and set(secrets[name]) <= set(AWS_VARIABLES)
                for name in from_secrets
            )
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                assert "value" not in env.get(name, {})
            # What the service makes of it: remote stores, nothing under a home.
            monkeypatch.setenv("REASONING_STORE", url)
            stores = Settings(**args).stores()
            assert stores.database == url and not stores.uses_home
            assert stores.secret_key_file == str(key_file)  # as given: the same on every pod


def test_rayservice_keeps_ray_inside_the_cluster(rayservice: dict[str, Any]) -> None:
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]
    # Explicit, so that no default or overlay makes the dashboard (which runs submitted
    # jobs) or the GCS reachable from outside Kubernetes.
    assert head["serviceType"] == "ClusterIP"

    def service_types(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [v for k, v in node.items() if k in {"serviceType", "type"}]
            return found + [t for v in node.values() for t in service_types(v)]
        if isinstance(node, list):
            return [t for v in node for t in service_types(v)]
        return []

    assert not {"LoadBalancer", "NodePort"} & set(map(str, service_types(rayservice)))
    ports = {
        p["name"]: p["containerPort"] for c in _containers(head) for p in c.get("ports", [])
    }
    # What KubeRay needs: the GCS, the dashboard (the operator deploys through it), Serve.
    assert {"gcs-server": 6379, "dashboard": 8265, "serve": 8000}.items() <= ports.items()
    for group in _groups(rayservice):
        for container in _containers(group):
            assert not any("hostPort" in p for p in container.get("ports", []))
        assert not group["template"]["spec"].get("hostNetwork")
    # The migration step is documented (the service also migrates at start).
    assert re.search(r"kubectl exec .* reasoning db upgrade", _header(RAYSERVICE))


def test_broken_rayservice_serve_config_is_rejected(rayservice: dict[str, Any]) -> None:
    config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    config["applications"][0]["deployments"][0]["num_cpu"] = 0
    with pytest.raises(ValueError):
        validate_serve_config(config)
