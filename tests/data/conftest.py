"""Data tests never touch the internet: downloads go to 127.0.0.1 (a closed port unless
a test serves files), the download cache is a temporary folder, and any connection to
a host other than the loopback interface fails at once."""

import socket

import pytest

_real_create_connection = socket.create_connection


def _loopback_only(address, *args, **kwargs):
    host = address[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"tests/data: network access to {host!r} is disabled in tests")
    return _real_create_connection(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MEMJAX_DATA_MIRROR", "http://127.0.0.1:9/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
    monkeypatch.delenv("MEMJAX_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(socket, "create_connection", _loopback_only)
