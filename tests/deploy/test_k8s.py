"""deploy/k8s: manifests parse, fit together, and match the settings and the image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings
from tests.kits.deploy import ROOT, parse_cli, settings_env_names, settings_from_env

K8S = ROOT / "deploy" / "k8s"


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]:
        for doc in load(name):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.fixture(scope="module")
def statefulset(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return objects[("StatefulSet", "tierstream")]


@pytest.fixture
def settings(objects: dict[tuple[str, str], dict[str, Any]], statefulset: dict[str, Any], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a worker pod runs with: the ConfigMap's file plus the container's literal env."""
    config = tmp_path / "tierstream.yaml"
    config.write_text(objects[("ConfigMap", "tierstream-config")]["data"]["tierstream.yaml"])
    env = {e["name"]: e["value"] for e in container(statefulset).get("env", []) if "value" in e}
    return settings_from_env(env, monkeypatch, config)


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    [worker] = statefulset["spec"]["template"]["spec"]["containers"]
    return dict(worker)


def test_every_manifest_parses_and_is_listed() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == {n for n in on_disk if ".example." not in n}
    for name in on_disk:
        for doc in load(name):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_the_pieces(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert {("ConfigMap", "tierstream-config"), ("Service", "tierstream"), ("Service", "tierstream-api"),
            ("StatefulSet", "tierstream"), ("PodDisruptionBudget", "tierstream"),
            ("Job", "tierstream-topics")} <= set(objects)


def test_config_map_is_valid_settings(settings: Settings) -> None:
    assert settings.store == "rocksdb"
    assert settings.standby_replicas >= 1


def test_state_lives_on_a_volume_claim(statefulset: dict[str, Any], settings: Settings) -> None:
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(statefulset)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == str(settings.data_dir)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_headless_service_for_the_statefulset(objects: dict[tuple[str, str], dict[str, Any]],
                                              statefulset: dict[str, Any]) -> None:
    service = objects[("Service", statefulset["spec"]["serviceName"])]
    assert service["spec"]["clusterIP"] == "None"
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for kind, name in (("Service", "tierstream"), ("Service", "tierstream-api"), ("PodDisruptionBudget", "tierstream")):
        selector = objects[(kind, name)]["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= labels.items()


def test_probes_hit_health_on_the_configured_port(statefulset: dict[str, Any], settings: Settings) -> None:
    worker = container(statefulset)
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = worker[probe]["httpGet"]
        assert get["path"] == ("/health?ready=1" if probe == "readinessProbe" else "/health")  # 503 when degraded
        assert ports.get(get["port"], get["port"]) == settings.web_port


def test_worker_command_env_and_scale(statefulset: dict[str, Any], settings: Settings) -> None:
    worker = container(statefulset)
    params = parse_cli(worker["args"])
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    assert str(params["config"]).startswith(mounts["config"])
    assert worker["args"][0] == "worker"
    names = {e["name"] for e in worker["env"]}
    assert names <= settings_env_names()
    web_host = next(e for e in worker["env"] if e["name"] == "TIERSTREAM_WEB_HOST")
    assert web_host["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"  # routable between pods
    assert statefulset["spec"]["replicas"] <= settings.partitions


def test_runs_as_the_images_user(statefulset: dict[str, Any]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    pod = statefulset["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid and pod["fsGroup"] == uid


def test_images_match_the_package_version(objects: dict[tuple[str, str], dict[str, Any]],
                                          statefulset: dict[str, Any]) -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    job = objects[("Job", "tierstream-topics")]["spec"]["template"]["spec"]["containers"][0]
    assert container(statefulset)["image"] == job["image"] == f"tierstream:{version}"
    assert compose["x-tierstream"]["image"] == f"tierstream:{version}"


def test_topics_job(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    job = objects[("Job", "tierstream-topics")]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"][:2] == ["topics", "create"]
    parse_cli(job["args"])


def test_disruption_budget(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert objects[("PodDisruptionBudget", "tierstream")]["spec"]["maxUnavailable"] == 1


def job_pod(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return dict(objects[("Job", "tierstream-topics")]["spec"]["template"]["spec"])


def test_topics_job_runs_like_the_workers_and_cleans_up(objects: dict[tuple[str, str], dict[str, Any]],
                                                        statefulset: dict[str, Any]) -> None:
    job = objects[("Job", "tierstream-topics")]
    pod = job_pod(objects)
    assert pod["securityContext"] == statefulset["spec"]["template"]["spec"]["securityContext"]
    assert pod["containers"][0]["securityContext"] == container(statefulset)["securityContext"]
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 86_400


def secret_env(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Env var name -> secretKeyRef of a container's variables that come from a Secret."""
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def test_secrets_reach_the_settings_that_read_them(objects: dict[tuple[str, str], dict[str, Any]],
                                                   statefulset: dict[str, Any]) -> None:
    [example] = load("secret.example.yaml")
    keys = set(example["stringData"])
    worker, job = secret_env(container(statefulset)), secret_env(job_pod(objects)["containers"][0])
    assert set(worker) <= settings_env_names() and set(job) <= settings_env_names()
    for refs in (worker, job):
        assert {ref["name"] for ref in refs.values()} == {example["metadata"]["name"]}
        assert {ref["key"] for ref in refs.values()} <= keys
    password = "TIERSTREAM_KAFKA_SASL_PASSWORD"
    assert password in worker and password in job  # what the ConfigMap's comment promises
    assert "kafka_sasl_password" in Settings.model_fields
    assert worker[password]["key"] == job[password]["key"] == "kafka-sasl-password"
    assert worker[password].get("optional") is True  # PLAINTEXT clusters have no such key
    assert "REDIS_URL" in worker
    comment = (K8S / "configmap.yaml").read_text()
    assert password in comment and "kafka-sasl-password" in comment
