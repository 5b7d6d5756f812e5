"""The deployment examples under deploy/ (which no test here can run: there is no container
engine) parse, fit together, and carry registry configs that ``dockyard check-config`` accepts
with the environment each example gives the replicas."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.config import read_config

from .services import find_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_the_examples_are_there() -> None:
    found = {str(path.relative_to(DEPLOY)) for path in yaml_files()}
    assert {
        "compose.yaml",
        "config.yml",
        "kubernetes/configmap.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/secret.yaml",
        "kubernetes/service.yaml",
    } <= found
    assert (DEPLOY / "haproxy.cfg").is_file()
    assert (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses_into_mappings(path: Path) -> None:
    documents = load_all(path)
    assert documents, f"{path} holds no document"
    for document in documents:
        assert isinstance(document, dict), f"{path}: a document is not a mapping"


# Kubernetes --------------------------------------------------------------------------------
def kubernetes_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for obj in load_all(path):
            for key in ("apiVersion", "kind", "metadata"):
                assert key in obj, f"{path}: an object without {key}"
            ident = (obj["kind"], obj["metadata"]["name"])
            assert ident not in objects, f"{path}: {ident} defined twice"
            objects[ident] = obj
    return objects


def _one(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for (k, _), obj in objects.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _config_path(args: list[str], mounts: list[dict[str, Any]], volume: str) -> str:
    """The config file named in ``args``, checked to lie in the mounted ConfigMap."""
    path = args[-1]
    mount = next(m for m in mounts if m["name"] == volume)
    assert path.startswith(mount["mountPath"].rstrip("/") + "/"), f"{path} is not in {mount}"
    return path


def test_kubernetes_manifests_fit_together() -> None:
    objects = kubernetes_objects()
    deployment = _one(objects, "Deployment")
    service = _one(objects, "Service")
    configmap = _one(objects, "ConfigMap")
    secret = _one(objects, "Secret")
    budget = _one(objects, "PodDisruptionBudget")

    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    for selector in (spec["selector"]["matchLabels"], budget["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()

    (container,) = pod["spec"]["containers"]
    (init,) = pod["spec"]["initContainers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/readyz"
    assert probe["port"] in ports
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[config_volume]["configMap"]["name"] == configmap["metadata"]["name"]
    assert container["args"][0] == "serve"
    assert init["args"][:1] == ["migrate"]
    assert init["image"] == container["image"]
    served = _config_path(container["args"], container["volumeMounts"], config_volume)
    migrated = _config_path(init["args"], init["volumeMounts"], config_volume)
    assert served == migrated
    assert Path(served).name in configmap["data"]
    for runs in (container, init):
        assert runs["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]


def run_check_config(config: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``dockyard check-config`` as a replica would see the config: with ``environment``; the
    file only (the stores it names are the deployment's, not reachable here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", "--offline", str(config)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def assert_accepted(config: Path, environment: dict[str, str]) -> None:
    done = run_check_config(config, environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    # A warning would mean an ignored variable: a secret that never reaches its key.
    assert "warning" not in done.stderr, done.stderr
    loaded = read_config(str(config), environment).config
    assert loaded.http.secret == environment["REGISTRY_HTTP_SECRET"]
    assert loaded.database_url == environment["REGISTRY_DATABASE_URL"]
    assert loaded.database_url.startswith("postgresql://")
    assert loaded.storage.s3 is not None
    assert loaded.storage.s3.accesskey == environment["REGISTRY_STORAGE_S3_ACCESSKEY"]
    assert loaded.storage.s3.secretkey == environment["REGISTRY_STORAGE_S3_SECRETKEY"]
    assert loaded.storage.filesystem is None
    assert loaded.redis.get("addr")


def test_configmap_config_passes_check_config(tmp_path: Path) -> None:
    objects = kubernetes_objects()
    config = tmp_path / "config.yml"
    config.write_text(_one(objects, "ConfigMap")["data"]["config.yml"])
    assert_accepted(config, dict(_one(objects, "Secret")["stringData"]))


# Compose -----------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``; ``$$`` is ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in variables:
            return variables[name]
        assert op is None or "?" not in op, f"compose needs {name}: {arg}"
        return arg if op else ""

    return _VARIABLE.sub(replace, value)


def compose_replicas() -> dict[str, dict[str, Any]]:
    compose = load_all(DEPLOY / "compose.yaml")[0]
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("command", [None])[0] in ("serve", "migrate")
    }


def _mounted_config(service: dict[str, Any]) -> Path:
    """The host file mounted where the service's command reads its config."""
    path: str = service["command"][-1]
    volumes: list[str] = service["volumes"]
    for volume in volumes:
        source, target, *_ = volume.split(":")
        if target == path:
            return (DEPLOY / source).resolve()
    raise AssertionError(f"nothing is mounted at {path}")


def test_compose_replicas_share_one_configuration() -> None:
    services = compose_replicas()
    serving = [name for name, service in services.items() if service["command"][0] == "serve"]
    assert len(serving) >= 2
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    for name in serving:
        service = services[name]
        assert service["image"] == migrate["image"], name
        assert service["environment"] == migrate["environment"], name
        assert _mounted_config(service) == _mounted_config(migrate), name
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_compose_config_passes_check_config() -> None:
    variables = {
        "DOCKYARD_HTTP_SECRET": "a" * 64,
        "POSTGRES_PASSWORD": "b" * 32,
        "MINIO_ROOT_PASSWORD": "c" * 32,
    }
    for name, service in compose_replicas().items():
        environment = {k: interpolate(str(v), variables) for k, v in service["environment"].items()}
        assert "$" not in "".join(environment.values()), name
        assert_accepted(_mounted_config(service), environment)


def test_haproxy_example_names_the_compose_replicas() -> None:
    binary = find_binary("haproxy")
    if binary is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    done = subprocess.run(
        [binary, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    servers = re.findall(
        r"^\s*server\s+\S+\s+([\w.-]+):5000\b", (DEPLOY / "haproxy.cfg").read_text(), re.M
    )
    serving = {n for n, s in compose_replicas().items() if s["command"][0] == "serve"}
    assert set(servers) == serving
