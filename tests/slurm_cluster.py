"""A throw-away Slurm cluster on this one machine, for tests.

`SlurmTestCluster(base_dir)` writes a munge key and a slurm.conf into `base_dir`, starts its
own munged, one slurmctld and two slurmd ("n1", "n2": two Slurm nodes on the same host, each
with its own port), and waits until both nodes are idle (about 1 s). Everything it writes
(state, spool, logs, pid files, the munge socket) lies under `base_dir`. Clients reach the
cluster through `cluster.env`: SLURM_CONF, and PATH starting with `base_dir/bin`, which holds
wrappers of the Slurm commands that set SLURM_CONF themselves (see _write_client_wrappers).
`stop()` kills every daemon and job step it started.

    with SlurmTestCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["srun", "-N2", "hostname"], env=cluster.env, check=True)
        cluster.stop_node("n2")               # a power cut: its jobs end as NODE_FAIL
        cluster.wait_for_state("n2", "down*")  # after 15-20 s
        cluster.start_node("n2")              # back, idle, within a second

Needs root (the daemons run as root: SlurmUser=root) and the Debian packages slurm-wlm and
munge. Run this file to try it: `python3 tests/slurm_cluster.py`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

NODES = ("n1", "n2")
# Both nodes claim the machine's 2 cores (2 "nodes" x 2 CPUs on 2 real cores, so jobs on
# both nodes share the cores): a job can use 2 threads on one node, or 1 task on each of 2
# nodes. Each slurmd only compares its own node with the hardware, and config_overrides
# keeps a node with fewer real cores from being drained.
CPUS_PER_NODE = 2
MEMORY_PER_NODE_MB = 2048  # not consumed (CR_Core), but --mem above it is refused
# slurmctld declares a killed slurmd DOWN after SlurmdTimeout plus its ping cycle: measured
# 15-20 s with 10 (5 or 6 were no faster).
SLURMD_TIMEOUT = 10
PARTITION = "debug"
CLIENT_COMMANDS = ("sbatch", "srun", "salloc", "sattach", "sbcast", "squeue", "scancel", "sinfo",
                   "scontrol", "sacct", "sacctmgr", "sshare", "sstat", "sprio", "sdiag", "sreport",
                   "strigger")

# Marks the daemons (and, through inheritance, their slurmstepd) of one cluster.
_MARK = "SLURM_TEST_CLUSTER"
_NODE_MARK = "SLURM_TEST_CLUSTER_NODE"

SLURM_CONF = """\
# Written by tests/slurm_cluster.py: a single-host test cluster, no cgroups, no database.
ClusterName=spikescale-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
PlugStackConfig={base}/plugstack.conf
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool/%n
SlurmctldPidFile={base}/run/slurmctld.pid
SlurmdPidFile={base}/run/slurmd-%n.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in the test machine: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# A machine with fewer cores than CPUs= still gets its nodes (instead of DRAINED ones).
SlurmdParameters=config_overrides
MpiDefault=none
# srun --mpi=pmix keeps the PMIx files of a job step under TmpFS; with the default (/tmp)
# the steps of one job on n1 and n2 (same host) collide on one directory and the step
# fails. %n gives each node its own.
TmpFS={base}/tmp/%n
SwitchType=switch/none
{accounting}
JobCompType=jobcomp/none
MailProg=/bin/true
# Failures show up fast:
#  - a node is DOWN 15-20 s after it stops answering, and its jobs end as NODE_FAIL
#    (JobRequeue=0: they are not put back in the queue);
#  - a node that comes back is usable again at once (ReturnToService=2);
#  - time limits hold exactly (OverTimeLimit=0), SIGKILL follows SIGTERM after 5 s (time
#    for a run to write its record); but
#    limits are whole minutes and slurmctld checks them every 30 s: -t 1 ends after 60-90 s.
SlurmdTimeout={slurmd_timeout}
MessageTimeout=5
ReturnToService=2
JobRequeue=0
KillWait=5
OverTimeLimit=0
InactiveLimit=30
# Finished jobs stay visible to squeue for 5 minutes. snakemake-executor-plugin-slurm
# polls with squeue (no accounting here), falls back to sacct if MinJobAge is below
# 3 x --slurm-init-seconds-before-status-checks, and waits forever for a job that vanished:
# keep this well above its polling interval (up to 180 s).
MinJobAge=300
# Several slurmd on one host: one port each, all at 127.0.0.1.
{gres_types}NodeName=DEFAULT CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory={memory}{node_gres}
NodeName={node_range} NodeHostname={host} NodeAddr=127.0.0.1 Port={node_ports} State=UNKNOWN
PartitionName={partition} Nodes={node_range} Default=YES MaxTime=INFINITE State=UP
"""


NO_ACCOUNTING = """\
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none"""

# With accounting=True: slurmdbd on its own MariaDB (both under base_dir). No energy plugin:
# this machine has no RAPL, IPMI or GPU for one to read (sacct then reports no energy).
ACCOUNTING = """\
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={host}
AccountingStoragePort={dbd_port}
# The munge socket for talking to slurmdbd (AuthInfo covers only the cluster's own daemons).
AccountingStoragePass={munge_socket}
AcctGatherEnergyType=acct_gather_energy/none"""

SLURMDBD_CONF = """\
# Written by tests/slurm_cluster.py
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost={host}
DbdPort={dbd_port}
SlurmUser=root
PidFile={base}/run/slurmdbd.pid
LogFile={base}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=slurm
StoragePass={db_password}
StorageLoc=slurm_acct_db
"""


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (the kernel's pick, so parallel clusters differ)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    """pid's children, grandchildren, ... (from /proc/<pid>/stat's parent field)."""
    parent_of = {}
    for other in _pids():
        try:
            stat = Path(f"/proc/{other}/stat").read_text()
        except OSError:
            continue
        parent_of[other] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parent_of.items() if parent == current]
        found += children
        frontier += children
    return found


def _kill(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class SlurmTestCluster:
    """munged + slurmctld + two slurmd on this host, all files under `base_dir`."""

    def __init__(self, base_dir, *, slurmd_timeout: int = SLURMD_TIMEOUT,
                 startup_timeout: float = 60.0, accounting: bool = False, gpus_per_node: int = 0):
        self.base = Path(base_dir).resolve()
        # gpus_per_node: that many stand-in GPUs per node (see _write_gres_conf)
        self.gpus_per_node = gpus_per_node
        # accounting: also a MariaDB server and slurmdbd (Debian's mariadb-server, slurmdbd),
        # so that sacct answers as on a production cluster.
        self.accounting = accounting
        self._mariadb = None
        self._slurmdbd = None
        self._db_password = secrets.token_hex(8)
        self.startup_timeout = startup_timeout
        self.nodes = list(NODES)
        self.cores_per_node = CPUS_PER_NODE
        self.memory_per_node_mb = MEMORY_PER_NODE_MB
        self.partition = PARTITION
        self.slurmd_timeout = slurmd_timeout
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.base / "slurm.conf"
        self.munge_dir = self.base / "munge"
        self.munge_socket = self.munge_dir / "munge.socket"
        self.log_dir = self.base / "log"
        self._id = f"{self.base}:{secrets.token_hex(4)}"
        self._munged = None
        self._slurmctld = None
        self._slurmd = {}  # node name -> Popen
        # What a client of this cluster needs: pass it to subprocess.run(..., env=cluster.env).
        self.bin_dir = self.base / "bin"
        # (Without the variables of any Slurm job the tests themselves might run in.)
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
        self.env["SLURM_CONF"] = str(self.conf)
        self.env["PATH"] = f"{self.bin_dir}{os.pathsep}{self.env.get('PATH', os.defpath)}"

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> "SlurmTestCluster":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- start ----------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._write_files()
            self._start_munged()
            if self.accounting:
                self._start_accounting()
            self._slurmctld = self._spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)], "slurmctld")
            for node in self.nodes:
                self.start_node(node, wait=False)
            self.wait_for_state(self.nodes, "idle", timeout=self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _write_files(self) -> None:
        for sub in ("state", "run", "log", *(f"{kind}/{node}" for kind in ("spool", "tmp") for node in self.nodes)):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # munged wants its socket directory readable by all (or --force: the temp dir's
        # parents, e.g. /tmp/pytest-of-root, are 0700) and its key private.
        self.munge_dir.mkdir(mode=0o755, exist_ok=True)
        self.munge_dir.chmod(0o755)
        key = self.munge_dir / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(1024))
            key.chmod(0o400)
        (self.base / "plugstack.conf").write_text("")  # keep /etc/slurm/plugstack.conf out
        self._write_client_wrappers()
        ctld_port, self._dbd_port, self._db_port, *node_ports = _free_ports(3 + len(self.nodes))
        accounting = (ACCOUNTING.format(host=self.host, dbd_port=self._dbd_port, munge_socket=self.munge_socket)
                      if self.accounting else NO_ACCOUNTING)
        if self.accounting:
            dbd_conf = self.base / "slurmdbd.conf"  # slurmdbd looks for it beside SLURM_CONF
            dbd_conf.write_text(SLURMDBD_CONF.format(
                munge_socket=self.munge_socket, host=self.host, dbd_port=self._dbd_port, base=self.base,
                db_port=self._db_port, db_password=self._db_password))
            dbd_conf.chmod(0o600)  # slurmdbd refuses a readable one (it holds a password)
        self.conf.write_text(SLURM_CONF.format(
            accounting=accounting,
            host=self.host, base=self.base, munge_socket=self.munge_socket,
            ctld_port=ctld_port, slurmd_timeout=self.slurmd_timeout,
            node_range=",".join(self.nodes), node_ports=",".join(map(str, node_ports)),
            cpus=self.cores_per_node, memory=self.memory_per_node_mb, partition=self.partition,
            gres_types="GresTypes=gpu\n" if self.gpus_per_node else "",
            node_gres=f" Gres=gpu:{self.gpus_per_node}" if self.gpus_per_node else "",
        ))
        if self.gpus_per_node:
            self._write_gres_conf()

    def _write_gres_conf(self) -> None:
        """gres.conf (slurmd reads it beside slurm.conf): gpus_per_node GPUs on each node, each
        a stand-in device under base_dir/dev: a character device with /dev/null's numbers
        (slurmd refuses a plain file: "not a valid character or block device", and then sets
        no CUDA_VISIBLE_DEVICES). Nothing opens them and no cgroup confines devices here: SLURM
        counts, grants and hands out the GPUs as on a real cluster (CUDA_VISIBLE_DEVICES,
        SLURM_GPUS_ON_NODE), but there is no GPU behind them."""
        dev = self.base / "dev"
        dev.mkdir(exist_ok=True)
        null = os.stat("/dev/null").st_rdev
        lines = ["# Written by tests/slurm_cluster.py: stand-in GPUs (/dev/null's device numbers)"]
        for node in self.nodes:
            for i in range(self.gpus_per_node):
                stand_in = dev / f"{node}-gpu{i}"
                if not stand_in.exists():
                    try:
                        os.mknod(stand_in, stat.S_IFCHR | 0o600, null)
                    except OSError as exc:  # no CAP_MKNOD: /dev/null itself stands in for one GPU
                        if self.gpus_per_node > 1:
                            raise RuntimeError(f"cannot create stand-in GPU device {stand_in}: {exc}") from exc
                        stand_in = Path("/dev/null")
                lines.append(f"NodeName={node} Name=gpu File={stand_in}")
        (self.base / "gres.conf").write_text("\n".join(lines) + "\n")

    def _start_accounting(self) -> None:
        """MariaDB (own data directory, TCP on 127.0.0.1 only), a database user for slurmdbd,
        slurmdbd, and this cluster registered in it. About 3 s."""
        data, sock = self.base / "mariadb", self.base / "mariadb.sock"
        if not data.exists():
            subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           check=True, capture_output=True, timeout=120)
        self._mariadb = self._spawn([
            "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={self._db_port}",
            "--bind-address=127.0.0.1", "--user=root", f"--pid-file={self.base / 'run' / 'mariadb.pid'}",
            "--skip-log-bin"], "mariadb")
        self._wait_for(lambda: sock.exists(), 60, "MariaDB")
        sql = (f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{self._db_password}'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        subprocess.run(["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e", sql], check=True,
                       capture_output=True, timeout=60)
        self._slurmdbd = self._spawn(["slurmdbd", "-D"], "slurmdbd")
        register = ["sacctmgr", "-i", "add", "cluster", "spikescale-test"]
        self._wait_for(lambda: subprocess.run(register, env=self.env, capture_output=True, timeout=30).returncode == 0
                       or self._cluster_registered(), 60, "slurmdbd")

    def _cluster_registered(self) -> bool:
        out = subprocess.run(["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"], env=self.env,
                             capture_output=True, text=True, timeout=30).stdout
        return "spikescale-test" in out.split()

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self._check_daemons()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start within {timeout:.0f} s\n" + self.logs())
            time.sleep(0.2)

    def _write_client_wrappers(self) -> None:
        """bin/<command> for each Slurm client: the real one, with SLURM_CONF set.

        SLURM_CONF alone does not reach every client: snakemake-executor-plugin-slurm-jobstep
        runs a job's `srun` (and mpirun its own) with every SLURM_* variable removed, so that
        srun would look for /etc/slurm/slurm.conf. `env` puts these wrappers first in PATH.
        """
        self.bin_dir.mkdir(exist_ok=True)
        search_path = os.pathsep.join(
            entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
            if entry and Path(entry).resolve() != self.bin_dir)
        for command in CLIENT_COMMANDS:
            real = shutil.which(command, path=search_path)
            if real is None:
                continue
            wrapper = self.bin_dir / command
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {real} "$@"\n')
            wrapper.chmod(0o755)

    def _start_munged(self) -> None:
        d = self.munge_dir
        self._munged = self._spawn([
            "munged", "--foreground", "--force",
            f"--key-file={d / 'munge.key'}", f"--socket={self.munge_socket}",
            f"--pid-file={d / 'munged.pid'}", f"--seed-file={d / 'munged.seed'}",
        ], "munged")  # in the foreground it logs to stderr: log/munged.out
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if self._munged.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("munged did not start\n" + self.logs())
            time.sleep(0.05)

    def _spawn(self, argv: list[str], name: str, node: str | None = None) -> subprocess.Popen:
        env = {**self.env, _MARK: self._id}
        if node:
            env[_NODE_MARK] = node
        with open(self.log_dir / f"{name}.out", "ab") as out:
            # Own session: a Ctrl-C aimed at the tests does not hit the daemons half-way.
            return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    # -- nodes ----------------------------------------------------------------------------

    def start_node(self, name: str, wait: bool = True) -> None:
        """Start (or restart) the slurmd of node `name`; with `wait`, until it is idle again."""
        old = self._slurmd.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"slurmd {name} is already running")
        self._slurmd[name] = self._spawn(["slurmd", "-D", "-N", name, "-f", str(self.conf)],
                                         f"slurmd-{name}", node=name)
        if wait:
            self.wait_for_state(name, "idle")

    def stop_node(self, name: str) -> None:
        """Kill node `name` as a power cut would: its slurmd and the job steps running on it.

        slurmctld marks it DOWN 15-20 s later (sinfo: "down*") and ends its jobs (state
        NODE_FAIL, also on the other node); `start_node(name)` brings it back.
        """
        slurmd = self._slurmd.pop(name, None)
        if slurmd is not None:
            slurmd.kill()
            slurmd.wait()
        self._kill_steps(node=name)

    def _kill_steps(self, node: str | None = None) -> None:
        """SIGKILL this cluster's slurmstepd (all, or `node`'s) and everything under them."""
        steps = [pid for pid in _pids() if _command_name(pid) == "slurmstepd"
                 and _environ(pid).get(_MARK) == self._id
                 and (node is None or _environ(pid).get(_NODE_MARK) == node)]
        victims = steps + [child for pid in steps for child in _descendants(pid)]
        _kill(victims)

    def node_states(self) -> dict[str, str]:
        """{node: state} as sinfo reports it (idle, alloc, mix, down*, ...)."""
        out = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%N %t"],
                             env=self.env, capture_output=True, text=True, timeout=30).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def wait_for_state(self, nodes, state: str, timeout: float = 60.0) -> None:
        """Wait until every node in `nodes` (a name or a list) is in `state`, as sinfo's %t
        prints it: "idle", "mix", "alloc", "down*" (down and not responding), ..."""
        nodes = [nodes] if isinstance(nodes, str) else list(nodes)
        deadline = time.monotonic() + timeout
        states = {}
        while True:
            self._check_daemons()
            try:
                states = self.node_states()
            except subprocess.TimeoutExpired:
                pass
            if all(states.get(node) == state for node in nodes):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {nodes} not {state} after {timeout:.0f} s "
                                   f"(sinfo: {states})\n" + self.logs())
            time.sleep(0.5)

    def wait_settled(self, timeout: float = 120.0) -> None:
        """Wait until the cluster is as after a fresh start: no job in the queue, no job step
        process of this cluster left, every node idle. After a kill (scancel, a time limit, a
        lost node) slurmd may still be cleaning up its steps for a minute, and a job launched
        on that node meanwhile can fail at launch (seen: "Task launch for StepId=21.0 failed
        on node n1: Zero Bytes were transmitted or received")."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_daemons()
            queue = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i %t"], env=self.env,
                                   capture_output=True, text=True, timeout=30).stdout.strip()
            ended = ("CD", "F", "CA", "TO", "NF", "PR", "BF", "DL", "OOM")
            live = [line for line in queue.splitlines() if line.split()[-1] not in ended]
            steps = [pid for pid in _pids() if _command_name(pid) == "slurmstepd"
                     and _environ(pid).get(_MARK) == self._id]
            states = self.node_states()
            if not live and not steps and all(states.get(node) == "idle" for node in self.nodes):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test cluster did not settle in {timeout:.0f} s: jobs {live}, "
                                   f"step processes {steps}, nodes {states}\n" + self.logs())
            time.sleep(1.0)

    def _check_daemons(self) -> None:
        daemons = {"munged": self._munged, "mariadb": self._mariadb, "slurmdbd": self._slurmdbd,
                   "slurmctld": self._slurmctld,
                   **{f"slurmd-{n}": p for n, p in self._slurmd.items()}}
        dead = {name: p.returncode for name, p in daemons.items() if p is not None and p.poll() is not None}
        if dead:
            raise RuntimeError(f"Slurm daemons exited: {dead}\n" + self.logs())

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Kill every daemon and job step of this cluster; raise if anything is left."""
        self._kill_steps()
        daemons = [*self._slurmd.values(), self._slurmctld, self._slurmdbd, self._mariadb, self._munged]
        for process in daemons:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in daemons:
            if process is None:
                continue
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._slurmd, self._slurmctld, self._slurmdbd, self._mariadb, self._munged = {}, None, None, None, None
        self._kill_steps()  # a step that a slurmd started while it was being stopped
        deadline = time.monotonic() + 10
        while (left := self.leftover_processes()) and time.monotonic() < deadline:
            _kill(left)
            time.sleep(0.2)
        if left:
            raise RuntimeError(f"processes of the test cluster still running: {left}")

    def leftover_processes(self) -> list[int]:
        """This cluster's daemons and job steps that are still alive (zombies excluded)."""
        left = []
        for pid in _pids():
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            except OSError:
                continue
            if _environ(pid).get(_MARK) == self._id:
                left.append(pid)
        return left

    # -- diagnostics ----------------------------------------------------------------------

    def logs(self, tail: int = 25) -> str:
        """The last lines of every daemon log, for error messages."""
        parts = []
        # A daemon's own log file, or what it printed before it could open one.
        logs = [log for log in sorted(self.log_dir.glob("*"))
                if log.suffix == ".log" or not log.with_suffix(".log").exists()]
        for log in logs:
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"==> {log} <==\n" + "\n".join(lines))
        return "\n".join(parts)


if __name__ == "__main__":
    import tempfile

    def show(*argv, env):
        print("$", " ".join(argv), flush=True)
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        print(result.stdout + result.stderr, flush=True)
        result.check_returncode()
        return result.stdout

    with tempfile.TemporaryDirectory(prefix="slurm-test-") as tmp:
        started = time.monotonic()
        with SlurmTestCluster(tmp) as cluster:
            print(f"cluster up in {time.monotonic() - started:.1f} s: nodes {cluster.nodes}, "
                  f"{cluster.cores_per_node} cores and {cluster.memory_per_node_mb} MB each", flush=True)
            env = cluster.env
            show("sinfo", env=env)
            show("srun", "-N2", "--ntasks-per-node=1", "bash", "-c", "echo $SLURMD_NODENAME $(hostname)", env=env)
            job = show("sbatch", "--parsable", "--array=1-2", f"--output={tmp}/array-%A_%a.out",
                       "--wrap", "echo task $SLURM_ARRAY_TASK_ID on $SLURMD_NODENAME; sleep 2", env=env).strip()
            show("squeue", env=env)
            while subprocess.run(["squeue", "-h", "-j", job, "-t", "PD,R,CG"], env=env,
                                 capture_output=True, text=True).stdout.strip():
                time.sleep(0.5)
            for out in sorted(Path(tmp).glob("array-*.out")):
                print(out.name, ":", out.read_text().strip())
            show("squeue", "--states=all", "--format=%i %j %T %N", env=env)
        leftovers = subprocess.run(["pgrep", "-af", tmp], capture_output=True, text=True).stdout
        print("stopped; still running:", leftovers or "nothing")
