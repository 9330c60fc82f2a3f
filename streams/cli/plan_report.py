"""`tierstream plan-report`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from streams.cli.base import app, err


@app.command("plan-report", epilog="""Examples:

\b
  tierstream replay events.jsonl --as-of 2024-12-31 --exact --decisions-out outputs.jsonl
  tierstream plan-report outputs.jsonl
  tierstream plan-report outcomes.jsonl --format json > report.json
  tierstream plan-report outcomes.jsonl --evidence-out evidence.json
      # for the ROI guard on evidence (roi_evidence; a worker's evidence_path, replay --evidence)
""")
def plan_report(
    inputs: Annotated[list[Path], typer.Argument(help="JSONL files with ContactOutcome lines ('-': stdin); "
                                                      "other lines are skipped.", allow_dash=True)],
    output_format: Annotated[str, typer.Option("--format", help="text (a table) or json (one object a row).")]
    = "text",
    evidence_out: Annotated[Path | None, typer.Option(
        "--evidence-out", help="Also write the measured uplift per rule and tier as an evidence file (JSON, "
                               "content-versioned) for the ROI guard on evidence.", dir_okay=False)] = None,
) -> None:
    """Measure each contact-plan rule against its control group.

    Treated against held out, per rule and tier: purchase rate, net revenue per customer, tier-up and
    churn rates in the outcome window, the uplift with its 95 % interval, and the revenue uplift minus
    the action's cost. A rule whose interval is entirely below zero is flagged (exit 0 all the same)."""
    from scoring.uplift import Observation, effects
    from streams.offline.plan_report import ReportInputError, read_outcomes, row, write_text

    if output_format not in ("text", "json"):
        raise typer.BadParameter(f"{output_format!r}: use text or json", param_hint="--format")
    observations: list[Observation] = []
    try:
        for path in inputs:
            if str(path) == "-":
                observations += read_outcomes(sys.stdin, "stdin")
                continue
            with path.open(encoding="utf-8") as lines:
                observations += read_outcomes(lines, str(path))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {exc.filename}: {exc.strerror}", param_hint="INPUTS") from None
    except (ReportInputError, UnicodeDecodeError) as exc:
        err.print(f"tierstream: error: {exc}")
        raise typer.Exit(1) from None
    if not observations:
        err.print("no ContactOutcome in the input: give rules a holdout_share and replay with --exact "
                  "--decisions-out (an outcome comes once its window has closed)")
        raise typer.Exit(1)
    found = effects(observations)
    if output_format == "json":
        for effect in found:
            sys.stdout.write(json.dumps(row(effect)) + "\n")
    else:
        write_text(sys.stdout, found)
    if evidence_out is not None:
        from scoring.evidence import make_evidence
        from streams.evidencefile import save_evidence

        evidence = make_evidence(found, len(observations))
        try:
            save_evidence(evidence, evidence_out)
        except OSError as exc:
            err.print(f"tierstream: error: cannot write {evidence_out}: {exc.strerror}")
            raise typer.Exit(2) from None
        err.print(f"evidence {evidence.version} written to {evidence_out}")
    flagged = sorted({e.rule for e in found if e.flagged and e.tier == "*"})
    err.print(f"{len(observations)} outcomes, {len({e.rule for e in found})} rules"
              + (f"; flagged: {', '.join(flagged)}" if flagged else ""))
