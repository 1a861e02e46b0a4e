"""stdio over pipes read and written on the event loop (``serving/stdio_pipes.py``), as MCP clients spawn the server.

The real command runs as a subprocess; what it does with its descriptors is read from ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, StdioPeer, command, server_env

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc (Linux)")


def _request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def _schema_call(request_id: int) -> dict[str, Any]:
    arguments = {"mode": "get_request_schema"}
    return _request(request_id, "tools/call", {"name": "batch_process_requests", "arguments": arguments})


def _dry_run_server(stderr: int) -> subprocess.Popen[bytes]:
    """The command with stdin and stdout as pipes this test drives itself (to stop reading, say)."""
    env = server_env(None, CUSTOMERIO_DRY_RUN="true", CUSTOMERIO_LOG_LEVEL="WARNING")
    return subprocess.Popen([command()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)


def _is_non_blocking(pid: int, fd: int | str) -> bool:
    """Whether the process's descriptor has O_NONBLOCK, as /proc shows it."""
    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
    flags = int(next(line for line in info.splitlines() if line.startswith("flags:")).split()[1], 8)
    return bool(flags & os.O_NONBLOCK)


def _started(fake: FakeCustomerIO | None, **env: str) -> StdioPeer:
    peer = StdioPeer([command()], server_env(fake, CUSTOMERIO_LOG_LEVEL="WARNING", **env), stderr=subprocess.PIPE)
    peer.send(INITIALIZE)
    peer.wait()
    peer.send(INITIALIZED)
    return peer


def test_the_wire_is_read_on_the_event_loop_and_fd_0_and_1_point_elsewhere(fake: FakeCustomerIO) -> None:
    peer = _started(fake)
    try:
        peer.send(_request(2, "tools/list"))
        assert len(peer.wait()[0][1]["result"]["tools"]) == 24
        fds = Path(f"/proc/{peer.proc.pid}/fd")
        assert os.readlink(fds / "0") == os.devnull  # a child or a stray read sees end of file
        assert os.readlink(fds / "1") == os.readlink(fds / "2")  # a stray print goes to stderr, not the wire
        assert os.readlink(fds / "2").startswith("pipe:")
        # Two answers read and written, and no thread was started for it (the SDK's transport starts one per read).
        assert os.listdir(f"/proc/{peer.proc.pid}/task") == [str(peer.proc.pid)]
        peer.send(
            _request(3, "tools/call", {"name": "track_anonymous_event", "arguments": {"request_body": {"name": "x"}}})
        )
        answer = peer.wait()[0][1]
        assert answer["result"]["isError"] is False, answer
        assert fake.only_request().raw_path == "/api/v1/events"
    finally:
        peer.close()
    assert peer.proc.returncode == 0


def test_answers_wait_for_a_slow_reader_while_requests_keep_being_read() -> None:
    """stdout full (the client is not reading) must not stop the server reading stdin: no deadlock."""
    proc = _dry_run_server(stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    assert proc.stdout is not None
    calls = 40  # ~14 KB each: several times a pipe's 64 KiB
    big = _request(999, "ping", {"_meta": {"padding": "x" * 900_000}})  # one line, many reads long
    lines = [INITIALIZE, INITIALIZED, *(_schema_call(10 + n) for n in range(calls))]
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    proc.stdin.flush()
    time.sleep(1.0)  # the answers fill stdout; nobody reads
    written = threading.Event()

    def write_big() -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(big).encode() + b"\n")
        proc.stdin.flush()
        written.set()

    threading.Thread(target=write_big, daemon=True).start()
    assert written.wait(30), "the server stopped reading stdin while its stdout was full"
    answers = {}
    while len(answers) < calls + 2:
        line = proc.stdout.readline()
        assert line.endswith(b"\n"), line[-200:]
        message = json.loads(line)
        answers[message["id"]] = message
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert answers[999]["result"] == {}
    schemas = [answers[10 + n]["result"]["content"][0]["text"] for n in range(calls)]
    assert len(set(schemas)) == 1
    assert len(schemas[0]) > 10_000


def test_files_on_stdin_and_stdout_are_served_by_the_sdk_transport(tmp_path: Path) -> None:
    """A terminal or a file is not a pipe: the SDK's own transport serves it, as before."""
    requests, answers = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    requests.write_text("".join(json.dumps(m) + "\n" for m in (INITIALIZE, INITIALIZED, _request(2, "tools/list"))))
    with requests.open("rb") as stdin, answers.open("wb") as stdout:
        done = subprocess.run(
            [command()],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=server_env(None, CUSTOMERIO_DRY_RUN="true", CUSTOMERIO_LOG_LEVEL="WARNING"),
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    by_id = {m["id"]: m for m in map(json.loads, answers.read_text().splitlines())}
    assert by_id[1]["result"]["serverInfo"]["name"] == "customerio-mcp"
    assert len(by_id[2]["result"]["tools"]) == 24


CLAIM_SCRIPT = """
import os, sys
from customerio_mcp.serving.stdio_pipes import _claim_pipes
read_end, write_end = os.pipe()
os.dup2(read_end, 0); os.dup2(write_end, 1)
stdin_inode, stdout_inode = os.fstat(0).st_ino, os.fstat(1).st_ino
claim = _claim_pipes()
assert claim is not None
assert os.path.samefile(f"/proc/self/fd/0", os.devnull)
assert os.fstat(1).st_ino == os.fstat(2).st_ino
assert os.get_blocking(claim.stdin) and os.get_blocking(claim.stdout)  # nothing non-blocking between writes
assert os.fstat(claim.stdin).st_ino == stdin_inode
claim.release()
assert (os.fstat(0).st_ino, os.fstat(1).st_ino) == (stdin_inode, stdout_inode)
assert os.get_blocking(0) and os.get_blocking(1)
os.write(2, b"restored")
"""


def test_the_claim_is_released_to_blocking_pipes_on_fd_0_and_1() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLAIM_SCRIPT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"restored"


def test_a_stdout_that_shares_the_pipe_of_stderr_is_left_blocking() -> None:
    """2>&1: made non-blocking, the server's own log lines could fail to be written."""
    proc = _dry_run_server(stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    proc.stdin.flush()
    answer = json.loads(next(line for line in proc.stdout if line.startswith(b"{")))
    assert answer["id"] == 1
    assert not _is_non_blocking(proc.pid, 1)
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def _pipe_inode(stream: Any) -> int:
    return os.fstat(stream.fileno()).st_ino


def test_the_pipes_are_not_left_non_blocking_between_writes(fake: FakeCustomerIO) -> None:
    """Another process holding the same pipe must never meet a non-blocking descriptor it did not ask for."""
    peer = _started(fake)
    try:
        peer.send(_request(2, "tools/list"))
        peer.wait()
        assert peer.proc.stdin is not None
        assert peer.proc.stdout is not None
        wire = {_pipe_inode(peer.proc.stdin), _pipe_inode(peer.proc.stdout)}
        held = [
            fd.name
            for fd in Path(f"/proc/{peer.proc.pid}/fd").iterdir()
            if os.readlink(fd).startswith("pipe:") and int(os.readlink(fd)[6:-1]) in wire
        ]
        assert len(held) == 2  # the private duplicates of the wire
        for fd in held:
            assert not _is_non_blocking(peer.proc.pid, fd)
    finally:
        peer.close()


def test_a_signal_stops_the_server_while_stdin_stays_open(fake: FakeCustomerIO) -> None:
    """The client may keep stdin open: SIGTERM alone must end the process (the SDK's reader thread kept it alive)."""
    peer = _started(fake)
    try:
        peer.send(_request(2, "tools/list"))
        peer.wait()
        peer.proc.send_signal(signal.SIGTERM)
        assert peer.proc.wait(timeout=15) == 0
    finally:
        peer.proc.kill()
        peer.proc.wait()
