"""docker-compose.yml and deploy/Dockerfile, checked without Docker: structure, settings, commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from streams.serving.redis_view import RedisStats
from streams.settings import Settings
from streams.worker.handler import Counters
from streams.worker.metrics import StatusCollector, WorkerMetrics
from tests.kits.deploy import ROOT, normalise_pip, parse_cli, readme_pip_installs, settings_env_names, settings_from_env

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def tierstream_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def test_services(services: dict[str, Any]) -> None:
    assert {"kafka", "redis", "topics", *WORKERS, "generator"} <= set(services)
    assert set(tierstream_services(services)) == {"topics", *WORKERS, "generator"}
    assert "zookeeper" not in services


def test_kafka_is_the_official_image_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"  # topics come from `topics create`
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "kafka-broker-api-versions" in " ".join(kafka["healthcheck"]["test"])


def test_every_service_has_a_health_check_or_is_a_job(services: dict[str, Any]) -> None:
    for name in ("kafka", "redis", *WORKERS):
        assert services[name]["healthcheck"]["test"], name
    for job in ("topics", "generator"):
        assert services[job]["restart"] == "no"


@pytest.mark.parametrize("name", ["topics", *WORKERS, "generator"])
def test_environment_is_valid_settings(name: str, services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: str(v) for k, v in services[name]["environment"].items()}
    assert set(env) <= settings_env_names(), set(env) - settings_env_names()
    settings = settings_from_env(env, monkeypatch)
    host, port = settings.kafka_bootstrap.split(":")
    kafka_env = services["kafka"]["environment"]
    assert f"PLAINTEXT://{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert re.fullmatch(r"redis://redis:6379/\d+", settings.redis_url.get_secret_value())
    assert "redis-server" in services["redis"]["command"]
    assert settings.partitions >= len(WORKERS)  # workers <= partitions
    assert settings.topics.model_dump() == type(settings.topics)().model_dump()  # the documented topic names


@pytest.mark.parametrize("name", WORKERS)
def test_workers(name: str, services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    worker = services[name]
    assert worker["command"] == ["worker"]
    assert parse_cli(worker["command"]) is not None
    settings = settings_from_env({k: str(v) for k, v in worker["environment"].items()}, monkeypatch)
    assert settings.web_host == worker["hostname"] == name  # reachable by the other worker for routing
    published = [str(p) for p in worker["ports"]]
    assert any(p.endswith(f":{settings.web_port}") for p in published)
    health = " ".join(worker["healthcheck"]["test"])
    assert f":{settings.web_port}/health" in health
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["kafka"]["condition"] == worker["depends_on"]["redis"]["condition"] \
        == "service_healthy"
    assert settings.store == "rocksdb"
    assert any(str(v).endswith(f":{settings.data_dir}") for v in worker["volumes"])


def test_jobs_run_real_commands(services: dict[str, Any]) -> None:
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    parse_cli(services["topics"]["command"])
    generator = services["generator"]
    assert generator["profiles"] == ["generator"]
    params = parse_cli(generator["command"])
    assert params["topic_mode"] == "mixed" and params["end_now"] is True


def test_image_entrypoint_is_the_cli() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["tierstream"\]$', text, re.M)
    assert re.search(r'^CMD \["worker"\]$', text, re.M)


def test_dockerfile_base_user_and_copied_packages() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(rf"useradd .*--uid 10001 .*{users[-1]}", text)
    project = (ROOT / "pyproject.toml").read_text()
    for package in re.findall(r'"(\w+)\*"', project.split("[tool.setuptools.packages.find]")[1].split("\n\n")[0]):
        assert re.search(rf"^COPY {package} \./{package}$", text, re.M), package
    assert re.search(r"^COPY pyproject\.toml README\.md \./$", text, re.M)  # the build needs the readme


def test_dockerfile_installs_the_way_the_readme_says() -> None:
    steps = [normalise_pip(m) for m in re.findall(r"^RUN (pip install .*)$", DOCKERFILE.read_text(), re.M)]
    assert len(steps) == 1
    assert steps[0] in readme_pip_installs(), f"README has no `{steps[0]}`; it has {readme_pip_installs()}"


def test_build_context_ignores_local_state() -> None:
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "tierstream-data"} <= set(ignored)


def test_cli_parsing_helper_refuses_bad_arguments() -> None:
    with pytest.raises(Exception, match="No such option"):
        parse_cli(["generate", "--no-such-option"])


# -- the monitoring profile: Prometheus, Grafana with the tierstream dashboard, a Kafka UI -------------------
MONITORING = ("prometheus", "grafana", "kafka-ui")
MONITORING_DIR = ROOT / "deploy" / "monitoring"


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (relative to the compose file)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = (COMPOSE.parent / source).resolve()
    return found


def exported_metric_names() -> set[str]:
    """Every sample name a worker's /metrics can have (read from the collectors, not from a list here)."""
    status = SimpleNamespace(
        settings=Settings(), counters=Counters(), redis=SimpleNamespace(stats=RedisStats()),
        lag=dict, partitions=list, table_customers=lambda: 0, deadlines=lambda: 0, unwritten=lambda: 0,
        calibration_version=lambda: None)
    metrics = WorkerMetrics()
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    families = [*metrics.registry.collect(), *StatusCollector(status).collect()]  # type: ignore[arg-type]
    return {family.name + suffix for family in families for suffix in suffixes[family.type]}


def test_the_default_stack_stays_small(services: dict[str, Any]) -> None:
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"kafka", "redis", "topics", *WORKERS}
    for name in MONITORING:
        assert services[name]["profiles"] == ["monitoring"], name


def test_every_mounted_monitoring_file_exists(services: dict[str, Any]) -> None:
    for name in MONITORING:
        for target, source in mounts(services[name]).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_prometheus_scrapes_every_worker(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    [job] = yaml.safe_load(config_path.read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = set()
    for name in WORKERS:
        settings = settings_from_env({k: str(v) for k, v in services[name]["environment"].items()}, monkeypatch)
        expected.add(f"{settings.web_host}:{settings.web_port}")
        assert settings.web_token is None  # else the scrape job needs the token
    assert targets == expected


def test_grafana_is_provisioned_with_the_dashboard(services: dict[str, Any]) -> None:
    grafana = mounts(services["grafana"])
    provisioning, dashboards = grafana["/etc/grafana/provisioning"], grafana["/var/lib/grafana/dashboards"]
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{services['prometheus']['ports'][0].split(':')[-1]}"
    [provider] = yaml.safe_load((provisioning / "dashboards" / "tierstream.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    board = json.loads((dashboards / "tierstream.json").read_text())
    assert board["uid"] == "tierstream" and board["panels"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == "/var/lib/grafana/dashboards/tierstream.json"


def test_the_dashboard_charts_what_the_issue_asks_from_metrics_that_exist(services: dict[str, Any]) -> None:
    dashboards = mounts(services["grafana"])["/var/lib/grafana/dashboards"]
    board = json.loads((dashboards / "tierstream.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\btierstream_\w+", expr)}
    assert used <= exported_metric_names(), used - exported_metric_names()
    titles = " ".join(panel["title"].lower() for panel in board["panels"])
    for topic in ("events per second", "lag", "tier mix", "alerts", "dead letters"):
        assert topic in titles, topic


def test_kafka_ui_points_at_the_broker(services: dict[str, Any]) -> None:
    ui = services["kafka-ui"]
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"].replace("PLAINTEXT://", "").split(",")
    assert ui["depends_on"]["kafka"]["condition"] == "service_healthy"
