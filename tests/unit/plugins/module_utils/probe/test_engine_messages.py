"""A probe that cannot open its sockets says what to do, and never tells root to run as root."""
import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import BackendUnavailable
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import engine_connect, engine_raw


def _refuse(*_args, **_kwargs):
    raise PermissionError(1, "Operation not permitted")


@pytest.mark.parametrize("euid,needle,absent", [(0, "CAP_NET_RAW", "run as root"), (1000, "run as root", "CAP_NET_RAW")])
def test_raw_sockets_refused(monkeypatch, euid, needle, absent):
    monkeypatch.setattr(engine_raw.os, "geteuid", lambda: euid)
    monkeypatch.setattr(engine_raw.socket, "socket", _refuse)
    with pytest.raises(BackendUnavailable) as exc:
        engine_raw.RawEngine({})
    assert needle in str(exc.value) and absent not in str(exc.value)
    assert "engine=connect" in str(exc.value)


@pytest.mark.parametrize("euid,needle,absent", [(0, "engine=raw", "run as root"), (1000, "run as root", "engine=raw")])
def test_ping_socket_refused(monkeypatch, euid, needle, absent):
    monkeypatch.setattr(engine_connect.os, "geteuid", lambda: euid)
    monkeypatch.setattr(engine_connect.socket, "socket", _refuse)
    with pytest.raises(BackendUnavailable) as exc:
        engine_connect.check_ping_socket(4)
    assert needle in str(exc.value) and absent not in str(exc.value)
    assert "ping_group_range" in str(exc.value)
