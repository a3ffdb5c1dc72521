"""Times as Graph, the azuread provider and a stack's config write them: RFC 3339, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_rfc3339(text: str) -> datetime:
    """Read an RFC 3339 time such as Graph and the provider return (may carry fractions)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def format_rfc3339(when: datetime) -> str:
    """`when` as RFC 3339 text in UTC, to the second."""
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
