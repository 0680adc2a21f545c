# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers for ksmtuned's integration tests: results, skips, fake trees, real-KSM save/restore."""

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77  # meson's exit status for a skipped test
CI = os.environ.get("CI") == "true"
KSMTUNED = os.environ.get("KSMTUNED", "")
KSMCTL = os.environ.get("KSMCTL", "")
FAKE_GUEST = os.environ.get("FAKE_GUEST", "")
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
REAL_KSM = "/sys/kernel/mm/ksm"
# advisor_mode first: while it is scan-time the kernel refuses pages_to_scan; run last.
KNOBS_TO_RESTORE = ("advisor_mode", "pages_to_scan", "sleep_millisecs", "smart_scan", "use_zero_pages",
                    "max_page_sharing", "merge_across_nodes", "run")


_real_lock_fd = None


def lock_real_parts():
    """Wait for, then hold until this process exits, the machine-wide lock of the tests that use real parts.

    KSM, libvirtd and /dev/kvm are one state for the whole machine: two such tests at once (two build
    directories, two checkouts, a benchmark) would change each other's knobs and guests. The lock is an
    flock on the KSM directory itself, so it leaves no file behind and is released when the process ends,
    however it ends. Taken at import when meson sets KSMTEST_REAL_LOCK=1 (the 'real' and 'packaging'
    suites)."""
    global _real_lock_fd
    if _real_lock_fd is not None or os.geteuid() != 0 or not os.path.isdir(REAL_KSM):
        return
    fd = os.open(REAL_KSM, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another test that uses the real KSM (flock on {REAL_KSM})", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _real_lock_fd = fd


def skip_or_fail(why):
    """A missing component skips on a developer machine, and fails under CI=true, where all must run."""
    if "pytest" in sys.modules:
        import pytest
        if CI:
            pytest.fail(f"{why} (CI=true: this test must run, not skip)", pytrace=False)
        pytest.skip(why, allow_module_level=True)
    if CI:
        print(f"FAIL: {why} (CI=true: this test must run, not skip)", flush=True)
        sys.exit(1)
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


def all_skipped_is_skip(session, exitstatus):
    """For a conftest's pytest_sessionfinish: a file whose every test skipped is a skipped test for meson
    (exit status 77), not a pass."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    stats = reporter.stats
    ran = sum(len(stats.get(k, [])) for k in ("passed", "failed", "error", "xfailed", "xpassed"))
    if ran == 0 and stats.get("skipped"):
        session.exitstatus = SKIP


def asan_instrumented(path):
    """True when the program at path is built with a sanitizer runtime: gcc links libasan dynamically,
    clang links its runtime statically, so look for either."""
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    if re.search(r"lib(asan|hwasan|tsan|msan)", ldd.stdout):
        return True
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def need_root(what="this test"):
    if os.geteuid() != 0:
        skip_or_fail(f"{what} needs root")


def need_real_ksm():
    need_root("the real kernel KSM")
    if not os.access(os.path.join(REAL_KSM, "run"), os.W_OK):
        skip_or_fail(f"{REAL_KSM}/run is missing or not writable")


def write(path, text):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def replace(path, text):
    """Write a file a running daemon reads in one rename, so that it never reads it half written."""
    write(path + ".new", text)
    os.rename(path + ".new", path)


def read(path):
    with open(path) as f:
        return f.read()


def make_ksm_dir(root, **values):
    """A directory laid out like /sys/kernel/mm/ksm with the kernel's defaults, overridden by values."""
    knobs = {
        "run": "0", "pages_to_scan": "100", "sleep_millisecs": "20", "pages_shared": "0",
        "pages_sharing": "0", "pages_unshared": "0", "pages_volatile": "0", "full_scans": "0",
        "merge_across_nodes": "1", "max_page_sharing": "256", "stable_node_chains": "0",
        "stable_node_dups": "0", "use_zero_pages": "0",
    }
    knobs.update({k: str(v) for k, v in values.items() if v is not None})
    os.makedirs(root, exist_ok=True)
    for k, v in knobs.items():
        write(os.path.join(root, k), v + "\n")
    for k, v in values.items():
        if v is None and os.path.exists(os.path.join(root, k)):
            os.unlink(os.path.join(root, k))
    return root


def ksm_values(root, knobs=("run", "pages_to_scan", "sleep_millisecs")):
    return {k: read(os.path.join(root, k)).strip() for k in knobs}


def meminfo_text(total, free, buffers=0, cached=0, available=None):
    lines = [f"MemTotal:       {total} kB", f"MemFree:        {free} kB"]
    if available is not None:
        lines.append(f"MemAvailable:   {available} kB")
    lines += [f"Buffers:        {buffers} kB", f"Cached:         {cached} kB",
              "SwapCached:            0 kB", "Active:          100000 kB"]
    return "\n".join(lines) + "\n"


def make_proc(root, meminfo, procs=()):
    """A directory laid out like /proc: meminfo, and PID directories from (pid, comm, rss_kb, cmdline)."""
    os.makedirs(root, exist_ok=True)
    write(os.path.join(root, "meminfo"), meminfo)
    for pid, comm, rss_kb, cmdline in procs:
        d = os.path.join(root, str(pid))
        write(os.path.join(d, "comm"), comm + "\n")
        pages = rss_kb * 1024 // os.sysconf("SC_PAGE_SIZE")
        write(os.path.join(d, "statm"), f"{pages * 3} {pages} 100 10 0 {pages} 0\n")
        write(os.path.join(d, "cmdline"), "\0".join(cmdline) + "\0")
    return root


def wait_for(pred, timeout=30.0, step=0.02):
    """Poll pred() until it is true or `timeout` seconds pass; return its last value.

    The timeout is a bound for a failure, not a pace: it costs nothing when pred() comes true, so make it
    generous enough for a busy machine and a sanitizer build."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(step)


class RealKsm:
    """Save the real KSM knobs on entry and put them back on exit, whatever happened."""

    def __enter__(self):
        self.saved = {}
        for k in KNOBS_TO_RESTORE:
            p = os.path.join(REAL_KSM, k)
            if os.path.exists(p):
                v = read(p).strip()
                if k == "advisor_mode":
                    v = v.split("[", 1)[1].split("]", 1)[0]
                self.saved[k] = v
        return self

    def __exit__(self, *exc):
        for k in KNOBS_TO_RESTORE:
            if k in self.saved:
                try:
                    write(os.path.join(REAL_KSM, k), self.saved[k] + "\n")
                except OSError as e:
                    print(f"warning: could not restore {REAL_KSM}/{k}={self.saved[k]}: {e}", flush=True)
        return False


SETTLE_SIGNALS = (signal.SIGUSR1, signal.SIGHUP)


class Daemon:
    """A process we started, stopped by its PID only."""

    def __init__(self, args, env=None, **kw):
        # O_APPEND: the process writes at the end whatever happens to the offset it shares with us.
        self.log = tempfile.TemporaryFile(mode="a+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, **kw)
        self.pid = self.proc.pid

    def output(self):
        """All the process wrote so far. pread(), not seek() and read(): the offset is the process's too."""
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def settled(self, sigs=SETTLE_SIGNALS):
        """True when the daemon sleeps in epoll_wait and none of `sigs` is pending: all that those signals
        caused has run.

        ksmtuned reads its signals through a signalfd (a signal stays pending until read) and runs what they
        ask for from sd-event defer sources, which keep epoll_wait from sleeping while any is pending. So a
        process asleep in epoll_wait with no such signal pending has nothing left to do for them. An event
        to wait for where the daemon logs nothing (an adjustment that fails after its first warning)."""
        try:
            status = read(f"/proc/{self.pid}/status")
            state = read(f"/proc/{self.pid}/stat").rsplit(")", 1)[1].split()[0]
            wchan = read(f"/proc/{self.pid}/wchan")
        except OSError:
            return False
        pending = 0
        for line in status.splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")):
                pending |= int(line.split()[1], 16)
        mask = sum(1 << (int(s) - 1) for s in sigs)
        return state == "S" and wchan == "do_epoll_wait" and not pending & mask

    def signal_and_settle(self, sig, timeout=60):
        """Send `sig`, then wait until the daemon has done all it asked for (see settled())."""
        self.proc.send_signal(sig)
        if not wait_for(self.settled, timeout):
            raise AssertionError(f"PID {self.pid} did not settle after signal {sig} in {timeout} s:\n"
                                 + self.output()[-3000:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=None, timeout=10):
        sig = signal.SIGTERM if sig is None else sig
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Libvirtd:
    """A real libvirtd (and virtlogd) for a test, started by hand as no systemd runs here, stopped by PID.

    A libvirtd already running is used as it is and left alone."""

    SOCKET = "/run/libvirt/libvirt-sock-ro"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-libvirtd-")
        self.started = []  # (name, pid) of what this object started
        self.kvm_mode = None

    def __enter__(self):
        for tool in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
            if not shutil.which(tool):
                skip_or_fail(f"{tool} is not installed")
        if not os.path.exists("/dev/kvm"):
            skip_or_fail("/dev/kvm is missing: no KVM on this machine")
        # qemu runs as libvirt-qemu, a member of the kvm group.
        st = os.stat("/dev/kvm")
        self.kvm_mode = (st.st_mode & 0o777, st.st_gid)
        import grp
        os.chown("/dev/kvm", -1, grp.getgrnam("kvm").gr_gid)
        os.chmod("/dev/kvm", 0o660)
        if not self._running("virtlogd", "/run/libvirt/virtlogd-sock"):
            self._start("virtlogd", ["virtlogd", "--daemon", "--pid-file", self._pidfile("virtlogd")])
        self.start_libvirtd()
        return self

    def _pidfile(self, name):
        return os.path.join(self.dir, name + ".pid")

    def _running(self, name, sock):
        return os.path.exists(sock) and subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0

    def _start(self, name, args):
        subprocess.run(args, check=True, timeout=60)
        pid = int(wait_for(lambda: os.path.exists(self._pidfile(name)) and read(self._pidfile(name)).strip(), 60))
        self.started.append((name, pid))
        return pid

    def start_libvirtd(self):
        if self._running("libvirtd", self.SOCKET) and not any(n == "libvirtd" for n, _ in self.started):
            return
        conf = os.path.join(self.dir, "libvirtd.conf")
        write(conf, f'log_outputs = "3:file:{self.dir}/libvirtd.log"\n')
        if os.path.exists(self._pidfile("libvirtd")):
            os.unlink(self._pidfile("libvirtd"))
        self._start("libvirtd", ["libvirtd", "--daemon", "--config", conf, "--pid-file", self._pidfile("libvirtd")])
        assert wait_for(lambda: self.virsh("list").returncode == 0, 120), "libvirtd does not answer"

    def kill_libvirtd(self):
        """Kill the libvirtd this object started (SIGKILL: as a crash or an upgrade's restart would)."""
        for i, (name, pid) in enumerate(self.started):
            if name == "libvirtd":
                os.kill(pid, signal.SIGKILL)
                assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 60), f"libvirtd {pid} outlived SIGKILL"
                del self.started[i]
                return
        raise AssertionError("this test did not start libvirtd, so it does not kill it")

    def virsh(self, *args, timeout=120):
        return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True,
                              timeout=timeout)

    def create(self, name, mib=256):
        xml = (f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>{mib}</memory><vcpu>1</vcpu>"
               "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
               "<emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/></devices></domain>")
        path = os.path.join(self.dir, name + ".xml")
        write(path, xml)
        r = self.virsh("create", path)
        assert r.returncode == 0, r.stderr
        return r

    def destroy(self, name):
        r = self.virsh("destroy", name)
        assert r.returncode == 0, r.stderr

    def __exit__(self, *exc):
        for name in [n for n in self.virsh("list", "--name").stdout.split() if n.startswith("ksmtuned-test-")]:
            self.virsh("destroy", name)
        for name, pid in reversed(self.started):
            try:
                os.kill(pid, signal.SIGTERM)
                if not wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 30):
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.kvm_mode:
            os.chmod("/dev/kvm", self.kvm_mode[0])
            os.chown("/dev/kvm", -1, self.kvm_mode[1])
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


if os.environ.get("KSMTEST_REAL_LOCK") == "1":
    lock_real_parts()
