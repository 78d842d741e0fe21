"""The host is sized for the WebSockets it must hold (comments_websocket_capacity), as an operator would check it.

Each proxied WebSocket holds one Apache worker thread and two descriptors in its Apache process, and one descriptor
in a Daphne worker; gracefully stopping Apache processes keep their scoreboard slots while their WebSockets live.
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import re

import pytest

MPM_CONF = "/etc/apache2/mods-available/mpm_event.conf"


@pytest.fixture(scope="module")
def capacity(site) -> int:
    return int(site.variables["comments_websocket_capacity"])


@pytest.fixture(scope="module")
def mpm(host) -> dict[str, int]:
    """The event MPM's directives, as Apache reads them."""
    text = host.file(MPM_CONF).content_string
    return {name: int(value) for name, value in re.findall(r"^\s*(\w+)\s+(\d+)\s*$", text, re.MULTILINE)}


def limit(host, pid: int, name: str) -> tuple[int, int]:
    """Soft and hard value of one limit of a running process (/proc/<pid>/limits)."""
    for line in host.file(f"/proc/{pid}/limits").content_string.splitlines():
        if line.startswith(name):
            soft, hard = line[len(name) :].split()[:2]
            return int(soft), int(hard)
    raise AssertionError(f"no {name!r} in /proc/{pid}/limits")


def listen_backlog(host, port: int) -> int:
    """The accept queue of a listening socket: `ss -ltn` shows it as Send-Q."""
    for line in host.check_output("ss --no-header --tcp --listening --numeric").splitlines():
        fields = line.split()
        if fields[3].rsplit(":", 1)[1] == str(port):
            return int(fields[2])
    raise AssertionError(f"nothing listens on {port}")


def test_apache_serves_the_capacity_and_some_http(mpm, capacity):
    assert mpm["MaxRequestWorkers"] > capacity
    assert mpm["MaxRequestWorkers"] % mpm["ThreadsPerChild"] == 0
    assert mpm["ThreadLimit"] == mpm["ThreadsPerChild"]


def test_apache_scoreboard_has_room_for_a_gracefully_stopping_generation(mpm):
    active_processes = mpm["MaxRequestWorkers"] // mpm["ThreadsPerChild"]
    assert mpm["ServerLimit"] >= 2 * active_processes


def test_apache_never_recycles_or_trims_processes_holding_websockets(mpm):
    assert mpm["MaxConnectionsPerChild"] == 0
    assert mpm["MaxSpareThreads"] >= mpm["MaxRequestWorkers"]


def test_apache_processes_may_open_two_descriptors_per_thread(host, mpm):
    main_pid = int(host.check_output("systemctl show --property MainPID --value apache2"))
    soft, hard = limit(host, main_pid, "Max open files")
    assert soft >= 2 * mpm["ThreadsPerChild"] + 64
    assert hard >= soft
    children = host.check_output(f"pgrep --parent {main_pid} --exact apache2 || true").split()
    assert children, "apache2 has no child process"
    assert limit(host, int(children[0]), "Max open files")[0] == soft


def test_apache_stop_does_not_wait_for_websockets_for_ever(mpm):
    assert 0 < mpm["GracefulShutdownTimeout"] <= 30


def test_apache_service_may_start_every_thread_of_its_scoreboard(host, mpm):
    tasks_max = host.check_output("systemctl show --property TasksMax --value apache2")
    assert tasks_max == "infinity" or int(tasks_max) >= mpm["ServerLimit"] * mpm["ThreadsPerChild"]


def test_daphne_workers_may_open_a_descriptor_per_websocket(host, capacity):
    # "[b]in": the pattern must not match the shell that runs pgrep.
    pids = host.check_output("pgrep --full '[b]in/daphne --fd 0' || true").split()
    assert pids, "no Daphne worker"
    for pid in pids:
        soft, _ = limit(host, int(pid), "Max open files")
        assert soft > capacity, f"Daphne worker {pid}: {soft} open files for {capacity} WebSockets"


def test_daphne_waits_for_queued_handshakes(host):
    """A handshake queued in a reconnect storm is not cut after Daphne's default 5 s (it would only come back)."""
    conf = host.file("/etc/supervisor/conf.d/comments-daphne.conf").content_string
    match = re.search(r"--websocket_connect_timeout (\d+)", conf)
    assert match, "no --websocket_connect_timeout in the Daphne program"
    assert int(match.group(1)) >= 10


def test_supervisord_asks_for_the_same_descriptors(host, capacity):
    conf = host.file("/etc/supervisor/supervisord.conf").content_string
    match = re.search(r"^minfds\s*=\s*(\d+)", conf, re.MULTILINE)
    assert match, "no minfds in supervisord.conf"
    assert int(match.group(1)) > capacity


@pytest.mark.parametrize(("port", "name"), [(443, "apache"), (9099, "daphne worker 0"), (9100, "daphne worker 1")])
def test_listen_queues_are_sized_for_a_reconnect_storm(host, capacity, port, name):
    """ListenBacklog and supervisor's socket_backlog ask for the capacity (1024..65535); the kernel caps it."""
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string)
    wanted = min(max(capacity, 1024), 65535)
    assert listen_backlog(host, port) == min(wanted, somaxconn), name
