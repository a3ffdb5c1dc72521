"""How long the fleet health page takes to render for 300 tenants (target: under one second).

Run: .venv/bin/python scripts/benchmark_fleet_page.py
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sample_reports import mixed_report  # noqa: E402

from presencesync.fleet_page import render  # noqa: E402

TENANTS, RUNS = 300, 20


def main() -> None:
    today = date(2026, 12, 1)
    report = mixed_report(TENANTS, today)
    seconds = []
    for _ in range(RUNS):
        started = time.perf_counter()
        page = render(report, today)
        seconds.append(time.perf_counter() - started)
    print(f"fleet page, {TENANTS} tenants: median {statistics.median(seconds) * 1000:.1f} ms, "
          f"slowest {max(seconds) * 1000:.1f} ms over {RUNS} renders ({len(page) // 1024} KiB)")


if __name__ == "__main__":
    main()
