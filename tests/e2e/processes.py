"""Start commands in their own process groups and stop exactly those groups, never by name.

Every component of the e2e deployment is a :class:`ProcessGroup`: one command started with
``start_new_session=True`` (so it leads a new session and process group that also holds every
child it forks: LocalExecutor workers, task supervisors, uvicorn workers), with stdout and
stderr in a log file. :func:`stop_groups` sends SIGTERM to each group, waits up to a grace
period for the whole group to exit, then sends SIGKILL to what is left.

Example::

    group = ProcessGroup("sandbox", [sys.executable, "-m", "http.server", "0"], log=tmp / "sandbox.log")
    group.start(env=os.environ.copy(), cwd=tmp)
    ...
    stop_groups([group], grace=10)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class DeploymentError(RuntimeError):
    """A component did not start, exited early or did not become ready in time."""


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, from ``/proc``.

    ``killpg(pgid, 0)`` is not enough: it also succeeds for zombies, and in a container whose
    PID 1 does not reap orphans, a killed worker's zombie would look alive forever.
    """
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                # The command name (field 2) is in parentheses and may hold spaces: split after it.
                state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # exited while we looked
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def command_line(pid: int) -> str:
    """A process's command line, for reports ("?" once it has gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


@dataclass
class ProcessGroup:
    """One command in its own process group (``start_new_session=True``), logging to ``log``."""

    name: str
    argv: Sequence[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: How the group ended: "exited" (before any signal), "SIGTERM" or "SIGKILL".
    ended_by: str | None = None

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid  # the session leader's pid is its group id

    def running(self) -> bool:
        """Whether the group's leader is still running (it is reaped if it has exited)."""
        return self.proc is not None and self.proc.poll() is None

    def alive(self) -> bool:
        """Whether any process of the group is still alive (the leader or any child)."""
        if self.proc is None:
            return False
        self.proc.poll()  # reap the leader, or it stays a zombie in the group
        return bool(group_members(self.pgid))

    def wait(self, timeout: float) -> int:
        """The leader's exit status; DeploymentError (naming the command, with its log) on timeout."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DeploymentError(f"{self.name} did not finish in {timeout:.0f} s\n{self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log})"
        return f"--- last {lines} lines of {self.log} ---\n" + "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # the whole group has already gone
            os.killpg(self.pgid, signum)


def stop_groups(groups: Iterable[ProcessGroup], grace: float) -> dict[str, str]:
    """SIGTERM every started group, SIGKILL whatever is left after ``grace`` s; how each ended.

    All groups get SIGTERM at once so their shutdowns overlap. Raises DeploymentError if a group
    still has live processes after SIGKILL (then something escaped its group and needs a look).
    """
    started = [g for g in groups if g.proc is not None]
    t0 = time.monotonic()
    took: dict[str, float] = {}

    def all_gone() -> bool:
        for group in started:
            if group.name not in took and not group.alive():
                took[group.name] = time.monotonic() - t0
        return len(took) == len(started)

    for group in started:
        group.ended_by = "SIGTERM" if group.alive() else "exited"
        group.signal_group(signal.SIGTERM)
    poll_until(all_gone, t0 + grace)
    for group in started:
        if group.alive():
            # Name what ignored SIGTERM: that is the finding, the SIGKILL only the clean-up.
            left = sorted(command_line(pid) for pid in group_members(group.pgid))
            group.ended_by = f"SIGKILL, after SIGTERM left {len(left)}: {'; '.join(left)[:300]}"
            group.signal_group(signal.SIGKILL)
    # SIGKILL cannot be ignored; a short bound only covers the kernel tearing the processes down.
    poll_until(all_gone, time.monotonic() + 10)
    survivors = {g.name: group_members(g.pgid) for g in started if g.alive()}
    if survivors:
        raise DeploymentError(f"processes survived SIGKILL: {survivors}")
    return {g.name: f"{g.ended_by} ({took.get(g.name, 0.0):.1f} s)" for g in started}


def poll_until(condition: Callable[[], bool], deadline: float, interval: float = 0.1) -> bool:
    """Call ``condition`` until it is true or ``time.monotonic()`` passes ``deadline``; its last value."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def listening_sockets(pids: Iterable[int]) -> list[tuple[int, str]]:
    """``(pid, "address:port")`` of every listening TCP socket the processes hold, from ``/proc``.

    Reads ``/proc/net/tcp`` and ``tcp6`` for sockets in state LISTEN, then each process's file
    descriptors for those sockets' inodes, so it needs no ``ss``/``netstat`` and names the owner.
    """
    listening: dict[str, str] = {}  # socket inode -> address
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening[fields[9]] = _proc_net_address(fields[1], family)
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # exited, or not ours to read
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                found.append((pid, listening[target[8:-1]]))
    return sorted(set(found))


def _proc_net_address(field: str, family: int) -> str:
    """``/proc/net/tcp``'s ``HEXADDR:HEXPORT`` (little-endian 32-bit words) as ``address:port``."""
    import ipaddress

    address, port = field.split(":")
    raw = bytes.fromhex(address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    host = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.IPv4Address(host) if family == 4 else ipaddress.IPv6Address(host)
    return f"[{ip}]:{int(port, 16)}" if family == 6 else f"{ip}:{int(port, 16)}"


def is_loopback(address: str) -> bool:
    """Whether ``address:port`` (``[v6]:port`` too) is on a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress

    host = address.rsplit(":", 1)[0].strip("[]")
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
