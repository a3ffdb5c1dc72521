"""The fleet health page: one self-contained HTML file rendered from one or more fleet reports.

Which tenants failed or drifted and why, worst first, with a filter by result, and when each
tenant's Novus client secret runs out, on a 24-month timeline. Everything is inline (no network),
so the file works opened from disk or as a CI artifact. Jinja2 autoescapes every value: tenant names
and reasons come from stack files and tenants' answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from presencesync.errors import PresenceSyncError
from presencesync.rfc3339 import parse_rfc3339

RESULT_ORDER = ("failed", "drifted", "changes", "ok")  # worst first
WARNING_DAYS = 30  # post-deploy --check calls a secret drift from here on
TIMELINE_DAYS = 730  # 24 months
_WIDTH, _LANE, _LANES, _LEFT, _TOP = 960, 9, 12, 40, 34
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # a line break (\r too) would end a table row


class ReportError(PresenceSyncError):
    """A fleet report that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class Mark:
    """One secret on the timeline."""

    tenant: str
    which: str  # "current" or "previous"
    end: date
    x: float
    y: float
    clamped: str  # "", "before" (already expired) or "after" (beyond 24 months)


def load_reports(paths: list[Path]) -> dict[str, Any]:
    """One report from several (e.g. one per CI job): the tenants of all, the latest finish, the sum of counts."""
    reports = []
    for path in paths:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(report, dict) or not isinstance(report.get("tenants"), list):
                raise ValueError("no tenants list")
        except (OSError, ValueError) as error:
            raise ReportError(f"{path}: not a fleet report ({error}); pass the JSON that fleet --report "
                              "writes") from None
        reports.append(report)
    if not reports:
        raise ReportError("no report given; pass the JSON files that fleet --report wrote")
    tenants = [t for r in reports for t in r["tenants"]]
    return {"action": "/".join(sorted({str(r.get("action", "?")) for r in reports})),
            "finished": max(str(r.get("finished", "")) for r in reports),
            "parallel": max(int(r.get("parallel", 1)) for r in reports),
            "wallSeconds": max(float(r.get("wallSeconds", 0)) for r in reports),
            "tenants": tenants}


def render(report: dict[str, Any], today: date, notes: list[str] | None = None) -> str:
    """The page; `notes` are lines about the run itself shown above all (e.g. a failed Teams post)."""
    rows = sorted((_row(t, today) for t in report["tenants"]), key=lambda r: (r["rank"], r["days_left"], r["stack"]))
    counts = {result: sum(r["result"] == result for r in rows) for result in RESULT_ORDER}
    marks = _marks(rows, today)
    template = _environment().get_template("fleet_page.html")
    return template.render(report=report, rows=rows, counts=counts, marks=marks, today=today, warning_days=WARNING_DAYS,
                           notes=notes or [],
                           ticks=_ticks(today), warning_x=_x(today + timedelta(days=WARNING_DAYS), today),
                           width=_WIDTH, height=_TOP + _LANES * _LANE + 24, left=_LEFT, top=_TOP,
                           lanes_bottom=_TOP + _LANES * _LANE)


def markdown_summary(report: dict[str, Any], today: date) -> str:
    """The tenants as a Markdown table, worst first (for a CI job summary); values escaped as text."""
    rows = sorted((_row(t, today) for t in report["tenants"]), key=lambda r: (r["rank"], r["days_left"], r["stack"]))
    counts = ", ".join(f"{sum(r['result'] == result for r in rows)} {result}" for result in RESULT_ORDER)
    lines = [f"### presencesync fleet {_md(str(report['action']))}: {counts}", "",
             "| tenant | result | client secret ends | days left | reason |", "|---|---|---|---:|---|"]
    lines += [f"| {_md(r['stack'])} | {r['result'].upper()} | {r['end'] or ''} | "
              f"{r['days_left'] if r['end'] else ''} | {_md(_reason(r))} |" for r in rows]
    return "\n".join(lines) + "\n"


def _reason(row: dict[str, Any]) -> str:
    return row["details"][0] if row["details"] else f"Action: {row['notices'][0]}" if row["notices"] else ""


def _md(text: str) -> str:
    return "".join(f"&#{ord(c)};" if c in "<>&|[]`*_\\" else " " if _CONTROL.fullmatch(c) else c for c in text)


def write_page(report: dict[str, Any], path: Path, today: date | None = None, notes: list[str] | None = None) -> None:
    path.write_text(render(report, today or datetime.now(UTC).date(), notes), encoding="utf-8")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _row(tenant: dict[str, Any], today: date) -> dict[str, Any]:
    result = str(tenant.get("result", "failed"))
    end = _day(tenant.get("clientSecretEndDate"))
    return {
        "stack": str(tenant.get("stack", "?")),
        "result": result,
        "rank": RESULT_ORDER.index(result) if result in RESULT_ORDER else 0,
        "details": [str(d) for d in tenant.get("details", [])],
        "notices": [str(n) for n in tenant.get("notices", [])],
        "changes": {str(k): v for k, v in (tenant.get("changes") or {}).items()},
        "end": end,
        "days_left": (end - today).days if end else 10**6,
        "warning": end is not None and (end - today).days < WARNING_DAYS,
        "passwords": _passwords(tenant, today),
        "previous_end": _day(tenant.get("previousClientSecretEndDate")),
        "next_rotation": _day(tenant.get("nextSecretRotation")),
        "seconds": float(tenant.get("seconds", 0)),
    }


def _passwords(tenant: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Each sync user's password expiry (post-deploy --check's reading), beside the secret's, with its thresholds."""
    rows = []
    for user, expires in sorted((tenant.get("syncUserPasswordExpiry") or {}).items()):
        end = _day(expires)
        days = (end - today).days if end else None
        rows.append({"user": str(user), "end": end.isoformat() if end else str(expires), "days_left": days,
                     "warning": days is not None and days < WARNING_DAYS})
    return rows


def _day(text: Any) -> date | None:
    try:
        return parse_rfc3339(text).date() if isinstance(text, str) else None
    except ValueError:
        return None


def _x(day: date, today: date) -> float:
    days = min(max((day - today).days, 0), TIMELINE_DAYS)
    return round(_LEFT + days * (_WIDTH - _LEFT - 10) / TIMELINE_DAYS, 1)


def _marks(rows: list[dict[str, Any]], today: date) -> list[Mark]:
    marks = []
    for index, row in enumerate(r for r in rows if r["end"]):
        for which, end in (("current", row["end"]), ("previous", row["previous_end"])):
            if end is None:
                continue
            offset = (end - today).days
            clamped = "before" if offset < 0 else "after" if offset > TIMELINE_DAYS else ""
            marks.append(Mark(row["stack"], which, end, _x(end, today), _TOP + (index % _LANES) * _LANE + 4, clamped))
    return marks


def _ticks(today: date) -> list[tuple[float, str]]:
    """A labelled tick on the first of every third month."""
    ticks = []
    year, month = today.year, today.month
    for _ in range(25):
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
        day = date(year, month, 1)
        if (day - today).days <= TIMELINE_DAYS and month % 3 == 1:
            ticks.append((_x(day, today), day.strftime("%b %Y")))
    return ticks
