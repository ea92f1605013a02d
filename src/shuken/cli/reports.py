"""`shuken doctor` and `shuken compliance report`: the report commands of the one Typer app. They only print
what governance.doctor and governance.compliance gather; a report goes to stdout or --out, messages to stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from shuken.cli.common import JsonOpt, print_json, app, err, out, services
from shuken.governance.identity import DEFAULT_WORKSPACE, Subject

compliance_app = typer.Typer(help="Evidence for auditors and regulators.", no_args_is_help=True)
app.add_typer(compliance_app, name="compliance")

MARKS = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red")}


@app.command()
def doctor(
    sovereignty: Annotated[bool, typer.Option("--sovereignty", help="The sovereignty checks (the only section "
                                              "today, so they also run without this flag).")] = False,
    as_json: JsonOpt = False,
):
    """Check that this installation is sovereign: model hashes, licences and origins, where data is stored, the
    listening address, the egress guard, offline switches, retention/consent per workspace, audit chains.
    Exit 1 naming every failed check; warnings (!) do not fail."""
    from shuken.reports.doctor import SECTIONS, gather

    before = dict(os.environ)  # to tell which offline switches Shuken itself had to set or override
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)  # bundled models must be registered to be verified
        report = gather(svc, show_progress=True, environ_before=before)
    if as_json:
        print_json(report.as_dict())
    else:
        table = Table(title="Shuken sovereignty report", title_justify="left")
        table.add_column("", no_wrap=True)
        table.add_column("check", overflow="fold")
        table.add_column("detail", overflow="fold")
        for section in SECTIONS:
            table.add_row("", Text(section.upper(), style="bold"), "")
            for check in (c for c in report.checks if c.section == section):
                mark, colour = MARKS[check.level]
                table.add_row(Text(mark, style=colour), check.name, check.detail)
            table.add_section()
        out.print(table)
    warnings = sum(1 for c in report.checks if c.ok and c.warning)
    if report.ok:
        err.print(f"[green]✓[/green] all {len(report.checks)} checks passed" +
                  (f" ({warnings} warning(s) marked !)" if warnings else ""))
        return
    err.print(f"[red]✗ {len(report.failed)} check(s) failed:[/red] {', '.join(report.failed)}")
    raise typer.Exit(1)


@compliance_app.command("report")
def compliance_report(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")] = DEFAULT_WORKSPACE,
    format: Annotated[str, typer.Option("--format", help="html (for people) or json (for tools).")] = "html",
    out_file: Annotated[Optional[Path], typer.Option("--out", help="File to write (default stdout).")] = None,
):
    """A workspace's compliance report: system, models and licences, data storage and flows, audit status
    (EU AI Act Art. 12), transparency (Art. 50), oversight, retention/consent/erasure, PII settings, and
    checklists for Japan's AI Guidelines for Business and APPI. Generating it is audited."""
    from shuken.reports.compliance import build_report, render_html, render_json

    if format not in ("html", "json"):
        err.print("[red]error:[/red] --format must be html or json")
        raise typer.Exit(2)
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)  # the report lists every model, bundled ones included
        report = build_report(svc, Subject.operator(workspace), fmt=format, show_progress=True)
    text = render_html(report) if format == "html" else render_json(report)
    if out_file is None:
        sys.stdout.write(text)
        return
    out_file.write_text(text, encoding="utf-8")
    err.print(f"Wrote the {format} compliance report of '{workspace}' to {out_file} "
              f"(audit record {(report['export_record'] or '')[:12]}…)")
