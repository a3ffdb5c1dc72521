"""Fleet reports of many tenants with mixed results, as `fleet --report` writes them (tests, benchmark)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

HOSTILE_NAME = "<script>window.__pwned = 1</script> & Sons"
HOSTILE_REASON = "consent: <script>window.__pwned = 2</script> lacks User.Read & more"


def mixed_report(tenants: int, today: date) -> dict[str, Any]:
    """`tenants` tenants: every 15th failed, every 7th drifted, every 5th with changes, the rest ok;
    every third rotates (two secrets); end dates spread over the next 26 months, some already past."""
    rows = []
    for i in range(tenants):
        result = "failed" if i % 15 == 0 else "drifted" if i % 7 == 0 else "changes" if i % 5 == 0 else "ok"
        end = today + timedelta(days=(i * 37) % 790 - 20)
        row: dict[str, Any] = {
            "stack": HOSTILE_NAME if i == 7 else f"customer-{i:03d}", "result": result,
            "changes": {"update": 1} if result in ("changes", "drifted") else {},
            "seconds": round(5 + (i % 13) * 1.7, 2),
            "details": ([HOSTILE_REASON] if i == 7 else [f"pulumi exited 1: error {i}"] if result == "failed"
                        else ["pulumi preview --refresh: the tenant differs from the stack"] if result == "drifted"
                        else []),
            "clientSecretEndDate": f"{end.isoformat()}T00:00:00Z",
        }
        if i % 3 == 0:
            row["previousClientSecretEndDate"] = f"{(end - timedelta(days=180)).isoformat()}T00:00:00Z"
            row["nextSecretRotation"] = f"{(end - timedelta(days=180)).isoformat()}T00:00:00Z"
        rows.append(row)
    counts = {r: sum(t["result"] == r for t in rows) for r in ("ok", "changes", "drifted", "failed")}
    return {"action": "drift", "parallel": 4, "finished": f"{today.isoformat()}T03:41:07+00:00",
            "wallSeconds": 1234.5, "counts": counts, "tenants": rows}
