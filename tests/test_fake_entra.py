"""The loopback fake itself: an address of its own per instance, and a clear skip where port 443 is closed."""

from __future__ import annotations

from pathlib import Path

import fake_entra
import pytest
from fake_entra import FakeEntra, RealmPortUnavailableError


def test_two_fakes_listen_side_by_side_each_with_its_realm_port(tmp_path: Path):
    first, second = FakeEntra(tmp_path), FakeEntra(tmp_path / "..")
    try:
        assert first.address != second.address and first.address.startswith("127.")
        assert first.realm.server_address == (first.address, 443)
    finally:
        first.close()
        second.close()


def test_without_the_right_to_bind_port_443_the_fake_says_so(monkeypatch, tmp_path: Path):
    def refused(address, handler):  # as bind() answers a user without CAP_NET_BIND_SERVICE
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fake_entra, "_Server", refused)
    with pytest.raises(RealmPortUnavailableError, match="port 443 needs root"):
        FakeEntra(tmp_path)
