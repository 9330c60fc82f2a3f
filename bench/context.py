"""What every part of a benchmark run shares: services, work directory, names, processes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.services import Process, Services, start_worker
from bench.sizes import Sizes
from streams.kafka import ensure_topics
from streams.settings import Settings, TopicNames

PARTITIONS = 4
# What moved Faust's rate on this broker (shared/KAFKA_TEST_BROKER.md): linger ~10 ms, big batches.
FAST_PRODUCER = {"producer_linger_seconds": 0.01, "producer_max_batch_size": 262_144}


@dataclass
class Context:
    services: Services
    workdir: Path
    sizes: Sizes
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    processes: list[Process] = field(default_factory=list)
    profile_dir: Path | None = None
    peers: bool = False  # part 2 also runs the peers (bench/peers/)
    latency_base: float | None = None  # part 3's loads are shares of this rate (default: part 2's)

    def topics(self, name: str, **fixed: str) -> dict[str, str]:
        """Unique topic names for one worker group; `fixed` keeps some (e.g. a shared input topic)."""
        names = {f: f"bench-{self.run}-{name}-{f}" for f in TopicNames.model_fields}
        return {**names, **fixed}

    def config(self, app: str, topics: dict[str, str], **extra: Any) -> dict[str, Any]:
        """A worker's YAML settings: fast join, quiet logs, its own app id, Redis prefix and data dir."""
        return {
            "kafka_bootstrap": self.services.bootstrap, "redis_url": self.services.redis.url,
            "redis_prefix": f"bench-{self.run}-{app}:", "app_id": f"bench-{self.run}-{app}",
            "partitions": PARTITIONS, "fast_join": True, "log_level": "warning",
            "data_dir": str(self.workdir / "faust-data"), "topics": topics, **FAST_PRODUCER, **extra,
        }

    def create_topics(self, config: dict[str, Any]) -> None:
        """Create a config's topics before anything produces (Tansu auto-creates with its own count)."""
        asyncio.run(ensure_topics(Settings(**config)))

    def start(self, name: str, config: dict[str, Any], module: str = "bench.worker",
              args: tuple[str, ...] = ()) -> Process:
        proc = start_worker(f"{self.run}-{name}", config, self.workdir, module, args)
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
