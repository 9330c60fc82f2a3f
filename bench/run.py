"""Runs the selected parts in an order that never measures two things at once, and gathers the results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.context import Context
from bench.core import run_core
from bench.data import days_for, mixed_messages, records_of
from bench.latency import run_latency
from bench.memory import collect_models, start_models, state_bytes
from bench.pipeline import SEED, run_pipeline
from bench.recovery import run_recovery
from bench.reviews import index_cost, review_logic_rate, review_offset_days, run_big, run_small
from bench.scaleout import run_scaleout
from bench.services import start_services
from bench.sizes import Sizes
from scoring.config import ScoringConfig

MIN_RSS_CUSTOMERS = 5_000


def run_parts(parts: list[str], sizes: Sizes, workdir: Path, config: ScoringConfig, profile: Path | None,
              console: Console, peers: bool = False, latency_base: float | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"details": {}}
    if "core" in parts:
        with console.status("1 core: fold, step, replay"):
            core = run_core(workdir, sizes.core_clones, sizes.core_repeats, config, sizes.core_exact)
        results["details"]["core"] = core
        results.update(core_events_per_s=core["core_fold_events_per_s"], replay_rows_per_s=core["replay_rows_per_s"],
                       weekly_year_state_bytes=core["weekly_year_state_bytes"])
    if "reviews" in parts:
        with console.status("6 re-scoring: DeadlineIndex.pop_due"):
            results["details"]["reviews"] = {
                "index": index_cost(sizes.index_sizes, sizes.index_due),
                "logic_customers_per_s": review_logic_rate(config, datetime.now(UTC), sizes.due_customers,
                                                           review_offset_days(config, datetime.now(UTC)))}
    if not set(parts) & {"pipeline", "reviews", "memory"}:
        return results
    services = start_services() if set(parts) & {"pipeline", "reviews"} else None
    ctx = Context(services, workdir, sizes, profile_dir=profile, peers=peers, latency_base=latency_base)  # type: ignore[arg-type]
    try:
        _service_parts(ctx, parts, config, results, console)
    finally:
        ctx.stop_all()
        if services is not None:
            services.stop()
    return results


def _service_parts(ctx: Context, parts: list[str], config: ScoringConfig, results: dict[str, Any],
                   console: Console) -> None:
    details, rss = results["details"], results.setdefault("rss_bytes_per_customer", {})
    messages = None
    if "pipeline" in parts:
        with console.status("2 pipeline: aiokafka, bare Faust, tierstream worker"):
            worker, pipeline, messages = run_pipeline(ctx, config)
        details["pipeline"] = pipeline
        results.update(pipeline_events_per_s=pipeline["events_per_s"],
                       aiokafka_consume_per_s=pipeline["aiokafka"]["events_per_s"],
                       bare_faust_events_per_s=pipeline["bare_faust"]["events_per_s"],
                       pipeline_vs_bare_faust=pipeline["vs_bare_faust"])
        if pipeline["customers"] >= MIN_RSS_CUSTOMERS:  # below, buffer growth drowns the table's share
            grown = pipeline["rss_loaded"] - pipeline["rss_ready"]
            rss[f"worker_{pipeline['customers']}"] = grown / pipeline["customers"]
        if "latency" in parts:
            with console.status("3 latency at 25/50/75 % load"):
                results["latency_ms"] = run_latency(ctx, worker, pipeline["topics"],
                                                    ctx.latency_base or pipeline["events_per_s"])
        worker.stop()
        if "scaleout" in parts:
            with console.status("4 scale-out: two workers"):
                scale = run_scaleout(ctx, records_of(messages), pipeline)
            details["scaleout"] = scale
            results["scaleout_speedup_2_workers"] = scale["speedup"]
    models: list[Any] = []
    if "memory" in parts:
        if messages is None:
            s = ctx.sizes
            messages = mixed_messages(SEED, s.pipeline_customers, days_for(s.pipeline_customers, s.pipeline_events),
                                      datetime.now(UTC))
        results["state_bytes_per_customer"] = state_bytes(messages, config, ctx.workdir / "states.bin")
        models = start_models(ctx.sizes.memory_sizes, ctx.workdir / "states.bin")

    def collect() -> None:  # the models run alongside the (unmeasured) loading of part 6's table
        if models:
            docs = collect_models(models)
            models.clear()
            details["memory_model"] = {str(n): doc for n, doc in sorted(docs.items())}
            rss.update({f"model_{n}": doc["bytes_per_customer"] for n, doc in sorted(docs.items())})

    if "reviews" in parts:
        _reviews(ctx, parts, config, results, collect, console)
    collect()


def _reviews(ctx: Context, parts: list[str], config: ScoringConfig, results: dict[str, Any],
             before_rescore: Callable[[], None], console: Console) -> None:
    offset = review_offset_days(config, datetime.now(UTC))
    details = results["details"].setdefault("reviews", {})
    with console.status("6 re-scoring: loading the larger table"):
        worker, big_config, big = run_big(ctx, offset, before_rescore)
    details["big"] = big
    results["rss_bytes_per_customer"][f"worker_{big['table']}"] = big["rss_per_customer"]
    if "recovery" in parts:
        with console.status("7 recovery from the changelog"):
            recovery = run_recovery(ctx, worker, big_config, big["ready_empty_s"])
        results["details"]["recovery"] = recovery
        results["recovery_s_per_100k"] = recovery["s_per_100k"]
    worker.stop()
    with console.status("6 re-scoring: the smaller table"):
        small = run_small(ctx, offset)
    details["small"] = small
    results["due_rescored_per_s"] = {str(small["table"]): small["reviewed_per_s"],
                                     str(big["table"]): big["reviewed_per_s"]}
