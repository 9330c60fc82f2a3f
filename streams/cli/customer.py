"""`tierstream customer ID`: a customer's profile from a running worker's query API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from streams.cli.base import ConfigOpt, app, err, settings_from

TIMEOUT_S = 10.0


def fetch_profile(base_url: str, customer_id: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of GET {base_url}/customers/{id}."""
    url = f"{base_url.rstrip('/')}/customers/{urllib.parse.quote(customer_id, safe='')}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            body = {}
        return exc.code, body if isinstance(body, dict) else {}


FACTS = (("as of", "as_of"), ("R / F / M", None), ("days since purchase", "recency_days"),
         ("purchases in window", "frequency"), ("spend in window", "monetary"), ("returns", "returns_amount"),
         ("complaints", "complaints"), ("tenure (days)", "tenure_days"), ("annual value", "annual_value"),
         ("typical gap (days)", "typical_gap_days"), ("next review", "next_review_at"), ("rules", "config_version"))
SHOWN = {key for _, key in FACTS} | {"customer_id", "tier", "score", "segment", "at_risk", "at_risk_score",
                                     "r_score", "f_score", "m_score", "components", "explanation"}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def profile_view(doc: dict[str, Any]) -> Group:
    """The profile as rich renderables: headline, RFM and money, score components, explanation."""
    risk = "[bold red]AT RISK[/]" if doc.get("at_risk") else "not at risk"
    head = (f"[bold]{doc.get('customer_id')}[/]  tier [bold]{doc.get('tier')}[/]  score {doc.get('score')}  "
            f"segment {doc.get('segment')}  {risk} ({doc.get('at_risk_score')})")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    for label, key in FACTS:
        value = f"{doc.get('r_score')} / {doc.get('f_score')} / {doc.get('m_score')}" if key is None else doc.get(key)
        facts.add_row(label, _fmt(value))
    for key, value in doc.items():  # whatever else the worker reports (value model, BTYD, ...)
        if key not in SHOWN:
            facts.add_row(key.replace("_", " "), _fmt(value))
    parts = Table("component", "value", "points", title="score components", title_justify="left")
    for c in doc.get("components") or []:
        parts.add_row(str(c.get("name")), _fmt(c.get("value")), f"{c.get('points', 0):+.2f}")
    why = doc.get("explanation") or "no score components"
    return Group(Panel(facts, title=head, title_align="left"), parts, f"why: {why}")


@app.command(epilog="""Examples:

\b
  tierstream customer C000042                       # the worker at http://127.0.0.1:6066 (config)
  tierstream customer C000042 --url http://127.0.0.1:6066 --json
""")
def customer(
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    url: Annotated[str | None, typer.Option(help="Worker web API (default http://<web_host>:<web_port>).")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token (default: web_token setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON document.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show a customer's tier, score and why, from a worker.

    Asks a running worker's query API (GET /customers/ID)."""
    settings = settings_from(config)
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    if not base.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{base!r} is not an http(s) URL", param_hint="--url")
    secret = token or (settings.web_token.get_secret_value() if settings.web_token else None)
    try:
        status, doc = fetch_profile(base, customer_id, secret)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        err.print(f"tierstream: error: cannot reach the worker at {base}: {reason}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if status == 404:
        err.print(f"tierstream: customer {customer_id!r} not found", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    if status != 200:
        err.print(f"tierstream: error: {base} answered {status}: {doc.get('error', 'no detail')}", markup=False,
                  soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    Console().print(profile_view(doc))
