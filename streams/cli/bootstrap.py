"""`tierstream bootstrap`: a history's customers as the workers' starting state (table changelog, Redis)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from scoring.errors import ConfigError
from streams.cli.base import ConfigOpt, app, err, run_with_kafka, settings_from
from streams.cli.options import (
    AmountCol,
    CategoryCol,
    Columns,
    CurrencyCol,
    CustomerCol,
    DateFormat,
    Delimiter,
    IdCol,
    Inputs,
    ItemCol,
    QuantityCol,
    SeverityCol,
    TimeCol,
    Timezone,
    TypeCol,
    csv_layout,
)
from streams.offline.history import BadRow, HistoryError, nothing_read
from streams.offline.history import Inputs as History

if TYPE_CHECKING:
    from scoring.config import ScoringConfig
    from scoring.valuemodel.model import ValueModel
    from streams.offline.bootstrap import BuildStats, Built
    from streams.serving.bootstrap import WriteReport
    from streams.settings import Settings

MAX_REPORTED = 20


@app.command(epilog="""Examples:

\b
  tierstream bootstrap events.jsonl                  # before the first worker starts
  tierstream bootstrap 2023.csv.gz 2024.csv.gz --id-col order_line --type-col type
  tierstream bootstrap online_retail.csv.gz --customer-col CustomerID --time-col InvoiceDate \\
      --amount-col UnitPrice --quantity-col Quantity --timezone Europe/London

Stop the workers first (it refuses while the app's consumer group has members). Running it again with the
same history writes the same states. Then start the workers: they recover the table from its changelog and
continue with live events.
""")
def bootstrap(
    inputs: Inputs,
    config: ConfigOpt = None,
    bootstrap_servers: Annotated[str | None, typer.Option(
        "--bootstrap", help="Kafka host:port[,...] (env KAFKA_BOOTSTRAP).")] = None,
    redis_url: Annotated[str | None, typer.Option("--redis-url", help="Redis URL (env REDIS_URL).")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help=(
        "Processes that step the customers (default: one per CPU, at most 8, for a large history)."))] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at", amount_col: AmountCol = "amount",
    type_col: TypeCol = None, id_col: IdCol = None, currency_col: CurrencyCol = None,
    quantity_col: QuantityCol = None, severity_col: SeverityCol = None, delimiter: Delimiter = ",",
    columns: Columns = None, date_format: DateFormat = None, timezone: Timezone = "UTC",
    item_col: ItemCol = None, category_col: CategoryCol = None,
) -> None:
    """Build the workers' starting state from a history.

    The states a worker with `clock: event` holds after consuming the history (dedupe ids, tiers, outbox,
    open outcome windows, reviews up to the day before each partition's last event), written to the
    customers table's changelog topic, the latest score snapshots to the scores topic, and the profiles (and
    the frequency-cap sets their actions' cap checks leave) to Redis; with the calibration, evidence and value
    model files the workers are configured with. Rows a worker refuses (more than max_future_seconds after now,
    more than event_clock_max_jump_days after the latest time before them) are reported and skipped."""
    settings = settings_from(config, kafka_bootstrap=bootstrap_servers, redis_url=redis_url)
    layout = csv_layout(**locals())
    if any(str(p) == "-" for p in inputs):
        raise typer.BadParameter("bootstrap reads files, not stdin", param_hint="INPUTS")
    config_, model = worker_scoring(settings)
    code = run_with_kafka(settings, _run(History(tuple(inputs), layout), settings, config_, model, jobs))
    raise typer.Exit(code)


def worker_scoring(settings: Settings) -> tuple[ScoringConfig, ValueModel | None]:
    """The rules the workers score with: the evidence file, then the calibration file, and the value model
    (as `streams.worker.app.Tierstream` reads them at start); a bad file is a config error."""
    from streams.calibrationfile import applied, load_calibration
    from streams.evidencefile import load_evidence
    from streams.modelfile import load_model

    config = settings.scoring
    if settings.evidence_path is not None and settings.evidence_path.exists():
        config = config.with_evidence(load_evidence(settings.evidence_path))
    if settings.calibration_path is not None and settings.calibration_path.exists():
        config = applied(config, load_calibration(settings.calibration_path), settings.calibration_path)
    model = load_model(settings.model_path) if settings.model_path is not None else None
    return config, model


async def _run(history: History, settings: Settings, config: ScoringConfig, model: ValueModel | None,
               jobs: int | None) -> int:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from scoring.events import MS_PER_DAY
    from streams.kafka import ensure_topics, one_line
    from streams.offline.bootstrap import build
    from streams.serving.bootstrap import active_members, write

    started = time.perf_counter()
    if members := await active_members(settings):
        err.print(f"tierstream: error: workers are consuming (consumer group {settings.app_id!r} has "
                  f"{len(members)} member{'s' if len(members) != 1 else ''}): stop them first; bootstrap writes "
                  "the table they own", markup=False, soft_wrap=True)
        return 1
    await ensure_topics(settings)
    reported: list[BadRow] = []

    def on_bad(row: BadRow) -> None:
        reported.append(row)
        if len(reported) <= MAX_REPORTED:
            err.print(f"{row.where}: {row.reason} (skipped)", markup=False, soft_wrap=True)

    try:
        built, stats = build(history, config, settings.partitions, int(time.time() * 1000),
                             max_future_ms=int(settings.scoring.max_future_seconds * 1000),
                             max_jump_ms=int(settings.event_clock_max_jump_days * MS_PER_DAY), model=model,
                             on_bad=on_bad, jobs=jobs)
    except HistoryError as exc:
        raise ConfigError(f"error: {exc}") from None
    if len(reported) > MAX_REPORTED:
        err.print(f"... and {len(reported) - MAX_REPORTED:,} more bad rows", markup=False)
    if stats.rows and stats.events == 0:
        first = reported[0] if reported else None
        err.print(f"tierstream: error: {nothing_read(first, len(reported))}; nothing written", markup=False,
                  soft_wrap=True)
        return 2
    redis = Redis.from_url(settings.redis_url.get_secret_value(), password=settings.redis_password.get_secret_value()
                           if settings.redis_password else None, socket_timeout=10.0, socket_connect_timeout=5.0)
    try:
        report = await write(settings, built, redis)
    except RedisError as exc:
        err.print(f"tierstream: error: Redis: {one_line(exc)}", markup=False, soft_wrap=True)
        return 1
    finally:
        await redis.aclose()
    _summary(stats, built, report, time.perf_counter() - started)
    return 0


def _summary(stats: BuildStats, built: list[Built], report: WriteReport, total: float) -> None:
    before = report.changelog_before
    days = sorted(set(stats.review_days.values()))
    reviewed = "" if not days else f"; reviewed to {_day(days[0])}" + (f"..{_day(days[-1])}" if len(days) > 1 else "")
    again = f"; the changelog held {before:,} records before (a second run writes the same states)" if before else ""
    err.print(
        f"rows read {stats.rows:,}; skipped: {stats.bad:,} bad, {stats.future:,} in the future"
        f"{f', {stats.jumped:,} beyond event_clock_max_jump_days' if stats.jumped else ''}; "
        f"{stats.applied:,} applied, {stats.duplicates:,} duplicate, {stats.rejected:,} rejected\n"
        f"customers {stats.customers:,} (forgotten {sum(b.state is None for b in built):,}){reviewed}{again}"
        f"{f'; frequency-cap keys {report.cap_keys:,}' if report.cap_keys else ''}\n"
        f"bootstrapped in {total:.1f} s (built in {stats.seconds:.1f} s by {stats.processes} process"
        f"{'es' if stats.processes != 1 else ''}, written in {report.seconds:.1f} s)", markup=False, soft_wrap=True)


def _day(epoch_day: int) -> str:
    from datetime import date, timedelta

    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()

