"""The Ray executor's connection check: an address that does not answer fails fast, in one line."""

import socket
import time

import pytest

from metaplastic.executors import ExecutorError, _check_answers


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_nobody_answers_fails_within_the_timeout():
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ExecutorError, match=f"127.0.0.1:{port} does not answer"):
        _check_answers(f"127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - start < 5.0


def test_a_client_address_is_checked_the_same_way():
    port = _closed_port()
    with pytest.raises(ExecutorError, match="does not answer"):
        _check_answers(f"ray://127.0.0.1:{port}", timeout=2.0)


def test_an_address_that_answers_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        _check_answers(f"127.0.0.1:{server.getsockname()[1]}", timeout=2.0)   # no error


@pytest.mark.parametrize("address", ["nonsense", "host:port", ":6379"])
def test_a_malformed_address_is_named(address):
    with pytest.raises(ExecutorError, match="is not auto, HOST:PORT or ray://HOST:PORT"):
        _check_answers(address, timeout=1.0)


def test_the_cli_reports_an_unreachable_cluster_in_one_line(tmp_path, capsys, shared_data):
    from metaplastic.cli import main

    port = _closed_port()
    start = time.monotonic()
    status = main(["run", "serial-position", "--items", "3", "--trials", "1", "--width", "4",
                   "--train-per-class", "4", "--test-per-class", "2", "--epochs", "1",
                   "--data-dir", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
                   "--out", str(tmp_path / "runs"), "--executor", "ray",
                   "--address", f"127.0.0.1:{port}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert any("does not answer" in line for line in err) and time.monotonic() - start < 60
