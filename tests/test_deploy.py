"""deploy/: the Kubernetes manifests and the compose file validate offline and fit the project.

Kubernetes resources are checked strictly (unknown fields refused) against the API schemas that
``kubernetes-validate`` ships; the compose file against the Compose specification's JSON Schema
that ``check-jsonschema`` vendors (``docker compose config`` needs a Docker engine and the compose
plugin, which CI does not have). Each validator is shown to refuse a broken copy, so that a pass
means something. The rest checks what a schema cannot: probes on ``/healthz``, a grace period above
the drain window, names that match across files, and only environment names the server knows.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from customerio_mcp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests promise to fit (autoscaling/v2, policy/v1)."""
DRAIN_SECONDS = getattr(Settings.model_fields.get("mcp_drain_seconds"), "default", None) or 25
"""The default drain window: a call under way gets this long to finish after SIGTERM."""


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert found, "check-jsonschema is a test dependency: pip install -e '.[test]'"
    return found


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("document", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_kubernetes_resource_is_valid(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validator_refuses_a_misspelt_field() -> None:
    broken = copy.deepcopy(resource("Deployment", "customerio-mcp"))
    spec = broken["spec"]["template"]["spec"]
    spec["terminationGracePeriod"] = spec.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployment_is_probed_on_healthz_and_drains_before_it_is_killed() -> None:
    pod = resource("Deployment", "customerio-mcp")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + DRAIN_SECONDS
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["CUSTOMERIO_MCP_TRANSPORT"] == "streamable-http"
    assert (int(env["CUSTOMERIO_MCP_PORT"]), int(env["CUSTOMERIO_MCP_HEALTH_PORT"])) == (ports["http"], ports["health"])
    assert env["CUSTOMERIO_REDIS_URL"] == "redis://customerio-mcp-redis:6379/0"
    assert container["envFrom"] == [{"secretRef": {"name": "customerio-mcp-keys"}}]
    assert set(resource("Secret", "customerio-mcp-keys")["stringData"]) == {
        "CUSTOMERIO_MCP_AUTH_TOKEN",
        "CUSTOMERIO_SITE_ID",
        "CUSTOMERIO_API_KEY",
        "CUSTOMERIO_PIPELINES_API_KEY",
    }
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user


def test_service_autoscaler_and_redis_point_at_what_exists() -> None:
    deployment = resource("Deployment", "customerio-mcp")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = resource("Service", "customerio-mcp")
    assert service["spec"]["selector"].items() <= labels.items()
    assert "sessionAffinity" not in service["spec"]  # stateless Streamable HTTP needs none
    hpa = resource("HorizontalPodAutoscaler", "customerio-mcp")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "customerio-mcp"}
    assert hpa["spec"]["minReplicas"] >= 2
    redis_labels = resource("Deployment", "customerio-mcp-redis")["spec"]["template"]["metadata"]["labels"]
    assert resource("Service", "customerio-mcp-redis")["spec"]["selector"].items() <= redis_labels.items()


def test_the_compose_file_is_valid() -> None:
    done = validate_compose(DEPLOY / "docker-compose.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_validator_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["mcp"]["deploy"]["replicas"] = "two"
    broken["services"]["mcp"]["healthchek"] = broken["services"]["mcp"].pop("healthcheck")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert validate_compose(path).returncode != 0


def test_compose_runs_two_checked_replicas_behind_a_balancer_with_redis() -> None:
    services = compose()["services"]
    mcp = services["mcp"]
    assert mcp["deploy"]["replicas"] == 2
    assert (DEPLOY / mcp["build"]["context"] / mcp["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
    health_port = mcp["environment"]["CUSTOMERIO_MCP_HEALTH_PORT"]
    assert f"127.0.0.1:{health_port}/healthz" in " ".join(mcp["healthcheck"]["test"])
    assert mcp["environment"]["CUSTOMERIO_MCP_TRANSPORT"] == "streamable-http"
    assert mcp["environment"]["CUSTOMERIO_REDIS_URL"] == "redis://redis:6379/0"
    assert mcp["depends_on"]["redis"]["condition"] == "service_healthy"
    assert int(mcp["stop_grace_period"].removesuffix("s")) > DRAIN_SECONDS
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    balancer = services["balancer"]
    assert balancer["image"].startswith("haproxy:")
    assert balancer["depends_on"]["mcp"]["condition"] == "service_healthy"
    assert "healthcheck" in balancer
    config = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    assert "option httpchk GET /healthz" in config
    assert re.search(rf"server-template \w+ \d+ mcp:8000 check port {health_port} ", config)  # service and ports
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in balancer["volumes"]
    assert (
        compose()["services"]["mcp"]["image"]
        == resource("Deployment", "customerio-mcp")["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def test_deploy_files_use_only_variables_the_server_knows() -> None:
    known = {f"CUSTOMERIO_{name.upper()}" for name in Settings.model_fields}
    text = "".join(path.read_text(encoding="utf-8") for path in sorted(DEPLOY.rglob("*.y*ml")))
    used = set(re.findall(r"\bCUSTOMERIO_[A-Z_]+\b", text))
    # The drain window is named in comments before its setting exists.
    assert used - known - {"CUSTOMERIO_MCP_DRAIN_SECONDS"} == set()
    assert {"CUSTOMERIO_REDIS_URL", "CUSTOMERIO_CREDENTIALS_FROM", "CUSTOMERIO_MCP_AUTH_TOKEN"} <= used
