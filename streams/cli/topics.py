"""`tierstream topics create|check`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.base import ConfigOpt, app, err, settings_from
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.kafka import TopicReport

topics_app = typer.Typer(help="Kafka topics: create them, or check them against the config.",
                         no_args_is_help=True)
app.add_typer(topics_app, name="topics")
BootstrapOpt = Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port[,...] (env KAFKA_BOOTSTRAP).")]
PartitionsOpt = Annotated[int | None, typer.Option(help="Partitions of co-partitioned topics (default: config).")]


def topic_roles(settings: Settings) -> dict[str, str]:
    """Every topic tierstream uses -> what it is for."""
    from streams.kafka import table_changelog

    t = settings.topics
    roles = dict.fromkeys(t.inputs().values(), "input")
    roles |= {t.events: "input (mixed)", table_changelog(settings): "internal (table)"}
    roles |= {t.tier_changes: "output", t.actions: "output", t.holdouts: "output (control groups)",
              t.outcomes: "output", t.alerts: "output", t.scores: "output",
              t.dlq: "dead letters", t.metrics: "monitoring"}
    return roles


def topics_table(settings: Settings, report: TopicReport) -> Table:
    from streams.kafka import planned_topics

    table = Table("topic", "partitions", "role", "status")
    roles = topic_roles(settings)
    for name, wanted in planned_topics(settings).items():
        have = report.existing.get(name)
        status = "created" if name in report.created else ("ok" if have is not None else "missing")
        table.add_row(name, str(wanted if have is None else have), roles.get(name, ""), status)
    return table


def _console() -> Console:
    """Stdout; not wrapped at 80 columns when it is not a terminal (long topic names stay on one line)."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _run(settings: Settings, create: bool) -> TopicReport:
    from streams.cli.base import run_with_kafka
    from streams.kafka import ensure_topics

    return run_with_kafka(settings, ensure_topics(settings, create=create))


@topics_app.command("create", epilog="""Examples:

\b
  tierstream topics create --bootstrap kafka:9092 --partitions 8
  KAFKA_BOOTSTRAP=kafka:9092 tierstream topics create -c tierstream.yaml
""")
def topics_create(config: ConfigOpt = None, bootstrap: BootstrapOpt = None, partitions: PartitionsOpt = None) -> None:
    """Create every missing topic with the configured partitions.

    Refuses when existing ones disagree."""
    settings = settings_from(config, kafka_bootstrap=bootstrap, partitions=partitions)
    report = _run(settings, create=True)
    _console().print(topics_table(settings, report))
    from streams.kafka import planned_topics

    total = len(planned_topics(settings))
    err.print(f"{len(report.created)} created, {total - len(report.created)} already there", markup=False,
              soft_wrap=True)


@topics_app.command("check", epilog="""Examples:

\b
  tierstream topics check --bootstrap kafka:9092    # exit 2 when a topic is missing or partitions disagree
""")
def topics_check(config: ConfigOpt = None, bootstrap: BootstrapOpt = None, partitions: PartitionsOpt = None) -> None:
    """Check every topic and its partitions (changes nothing).

    Every topic exists and co-partitioned topics have the configured partitions."""
    settings = settings_from(config, kafka_bootstrap=bootstrap, partitions=partitions)
    report = _run(settings, create=False)
    _console().print(topics_table(settings, report))
