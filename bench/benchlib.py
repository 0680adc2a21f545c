# SPDX-License-Identifier: GPL-2.0-or-later
"""What the three benchmarks share: clocks, the machine, KSM's knobs and ksmd, our daemon with timestamped
output, and the original script run in a private namespace by bench/original_ns.py."""

import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import ksmtest  # noqa: E402

REAL_KSM = ksmtest.REAL_KSM
# A benchmark owns the real KSM for its whole run: wait for any test that uses it, and keep them out.
ksmtest.lock_real_parts()
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")

# The kernel's own defaults, restored before each policy of the merging benchmark. advisor_mode first:
# while it is scan-time the kernel refuses pages_to_scan; run last.
KSM_DEFAULTS = (("advisor_mode", "none"), ("advisor_max_cpu", "70"), ("advisor_min_pages_to_scan", "500"),
                ("advisor_max_pages_to_scan", "30000"), ("advisor_target_scan_time", "200"),
                ("pages_to_scan", "100"), ("sleep_millisecs", "20"), ("smart_scan", "1"), ("use_zero_pages", "0"),
                ("max_page_sharing", "256"), ("merge_across_nodes", "1"), ("run", "0"))
ADVISOR_KNOBS = ("advisor_max_cpu", "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
                 "advisor_target_scan_time")


def now():
    """Seconds on CLOCK_BOOTTIME: the clock of /proc/PID/stat's start times, so all figures share it."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def wall_to_boot(wall_ns):
    return wall_ns / 1e9 - (time.time() - now())


def need_root():
    if os.geteuid() != 0:
        sys.exit("bench/run.py must run as root: it uses mount and PID namespaces, the real KSM knobs, "
                 "/dev/kvm and libvirtd. Run it with sudo, or as root.")


def machine():
    cpu = "?"
    for line in ksmtest.read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = round(int(ksmtest.read("/proc/meminfo").split()[1]) / 1024 / 1024)
    distro = "Linux"
    try:
        for line in ksmtest.read("/etc/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{distro}, {cpu}, {os.cpu_count()} CPUs, {mem} GiB, kernel {platform.release()}"


def md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def median_max(xs, fmt="{:.2f}"):
    if not xs:
        return "-", "-"
    return fmt.format(statistics.median(xs)), fmt.format(max(xs))


# ---------------------------------------------------------------- processes

def status_kb(pid, *fields):
    """Fields of /proc/PID/status in kB (VmRSS, RssAnon...), or None when gone."""
    try:
        text = ksmtest.read(f"/proc/{pid}/status")
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in fields:
            out[k] = int(v.split()[0])
    return out


def stop_pid(p, timeout=10):
    """Stop a Popen we started: SIGTERM, then SIGKILL after timeout."""
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def kill_pid(pid, sig=signal.SIGTERM):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def ksmd_pid():
    """The kernel thread ksmd: comm ksmd, parent kthreadd (PID 2)."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = ksmtest.read(f"/proc/{d}/stat")
            except OSError:
                continue
            comm = s.split("(", 1)[1].rsplit(")", 1)[0]
            if comm == "ksmd" and s.rsplit(")", 1)[1].split()[1] == "2":
                return int(d)
    return None


def cpu_seconds(pid):
    """utime + stime of a process (or kernel thread) in seconds, from /proc/PID/stat."""
    f = ksmtest.read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def start_time(pid):
    """When a process started, in CLOCK_BOOTTIME seconds (clock-tick resolution)."""
    f = ksmtest.read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return int(f[19]) / TICK


# ---------------------------------------------------------------- the real KSM knobs

def ksm_read(knob):
    v = ksmtest.read(os.path.join(REAL_KSM, knob)).strip()
    if knob == "advisor_mode" and "[" in v:
        v = v.split("[", 1)[1].split("]", 1)[0]
    return v


def ksm_write(knob, value):
    path = os.path.join(REAL_KSM, knob)
    if os.path.exists(path):
        with open(path, "w") as f:
            f.write(str(value) + "\n")


class SavedKsm(ksmtest.RealKsm):
    """ksmtest.RealKsm, plus the advisor's knobs, which it does not keep."""

    def __enter__(self):
        super().__enter__()
        self.advisor = {k: ksm_read(k) for k in ADVISOR_KNOBS if os.path.exists(os.path.join(REAL_KSM, k))}
        return self

    def __exit__(self, *exc):
        for k, v in self.advisor.items():
            try:
                ksm_write(k, v)
            except OSError as e:
                print(f"warning: could not restore {REAL_KSM}/{k}={v}: {e}", flush=True)
        return super().__exit__(*exc)


def ksm_reset():
    """Unmerge everything (run=2, which also resets the counters), then the kernel's defaults, KSM off."""
    ksm_write("advisor_mode", "none")
    ksm_write("run", "2")
    for k, v in KSM_DEFAULTS:
        ksm_write(k, v)


# ---------------------------------------------------------------- KVM uevents: who else starts VMs

class KvmEvents:
    """Listens to the kernel's uevents like ksmtuned does, and keeps (time, create|destroy, PID) of every
    KVM VM: a VM of a PID that is not ours means something else on the host made the figures noisier."""

    NETLINK_KOBJECT_UEVENT = 15

    def __init__(self):
        import socket
        self.events = []
        self.comms = {}
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.NETLINK_KOBJECT_UEVENT)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 1))
        self.stopped = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopped:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            try:
                msg = self.sock.recv(65536)
            except OSError:
                continue
            fields = msg.split(b"\0")
            if not fields[0].endswith(b"/devices/virtual/misc/kvm"):
                continue
            kv = dict(f.decode(errors="replace").split("=", 1) for f in fields[1:] if b"=" in f)
            if kv.get("EVENT") in ("create", "destroy") and kv.get("PID", "").isdigit():
                pid = int(kv["PID"])
                if kv["EVENT"] == "create":
                    try:
                        self.comms[pid] = ksmtest.read(f"/proc/{pid}/comm").strip()
                    except OSError:
                        pass
                self.events.append((now(), kv["EVENT"], pid))

    def foreign(self, mine, since=0.0):
        """Events after since whose PID is not in mine: ['create 1234 (qemu-system-x86)', ...]."""
        return [f"{e} {pid} ({self.comms.get(pid, '?')})" for t, e, pid in list(self.events)
                if t >= since and pid not in mine]

    def close(self):
        self.stopped = True
        self.thread.join(1)
        self.sock.close()


# ---------------------------------------------------------------- our daemon, every line timestamped

class Ours:
    """ksmtuned --debug in the foreground; a thread stamps each output line with now() as it arrives."""

    def __init__(self, ksmtuned, conf, ksm_dir=None, extra=()):
        args = [ksmtuned, "--config", conf, "--debug", *extra]
        if ksm_dir:
            args += ["--ksm-dir", ksm_dir]
        self.lines = []  # (time, line)
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((now(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pred, start=0, timeout=10.0):
        """The first (index, time, line) at or after index start for which pred(line) holds, or None."""
        end = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    if pred(line):
                        return i, t, line
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.1))

    def adjustments(self):
        with self.cond:
            return [(t, line) for t, line in self.lines if "adjustment #" in line]

    def count(self):
        return len(self.lines)

    def text(self, tail=40):
        with self.cond:
            return "\n".join(line for _, line in self.lines[-tail:])

    def stop(self):
        stop_pid(self.proc)
        self.thread.join(5)
        # For whoever tunes a policy: its whole --debug output, stamped in seconds since the run began.
        keep = os.environ.get("KSMTUNED_BENCH_LOG")
        if keep:
            with self.cond, open(keep, "a") as f:
                t0 = self.lines[0][0] if self.lines else 0
                f.writelines(f"{t - t0:9.3f} {line}\n" for t, line in self.lines)


def is_adjustment(line):
    return "adjustment #" in line


def adjustment_reason(line):
    """'adjustment #3 (libvirt guest x started (+1 more)): ...' -> 'libvirt guest x started (+1 more)'."""
    rest = line.split("adjustment #", 1)[1]
    if "(" not in rest:
        return ""
    rest = rest.split("(", 1)[1]
    depth, out = 1, []
    for c in rest:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                break
        out.append(c)
    return "".join(out)


# ---------------------------------------------------------------- the original, in its own namespace

class OriginalNs:
    """Debian's ksmtuned in a private mount and PID namespace (bench/original_ns.py), seen from outside.

    mode 'fake': a tmpfs over /sys/kernel/mm/ksm and a fake /proc/meminfo (16 GiB, nearly all free:
    it stops KSM at each adjustment), for timing its adjustments. mode 'real': the real KSM and
    /proc/meminfo. conf is its /etc/ksmtuned.conf (an overlay: the host's file is untouched). A thread
    records when each adjustment happened, in now() seconds.
    """

    def __init__(self, build, tmp, mode, conf, deb):
        self.tmp = tmp
        os.makedirs(tmp, exist_ok=True)
        ksmtest.write(os.path.join(tmp, "ksmtuned.conf"), conf)
        self.adjusts = []
        self.cond = threading.Condition()
        self.loop_pid = None
        env = dict(os.environ, BUILD_ROOT=os.path.abspath(build))
        env.pop("KSMDIFF_INNER", None)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "original_ns.py"), mode, tmp, deb],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=env)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            self.stop()
            raise RuntimeError(f"the original's namespace did not start: {line}")
        self.loop_pid_ns = int(line[1])  # its PID inside the namespace
        self.started = now()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            w = line.split()
            if len(w) == 2 and w[0] == "adjust":
                with self.cond:
                    self.adjusts.append(wall_to_boot(int(w[1])))
                    self.cond.notify_all()

    def next_adjustment(self, after, timeout):
        """The time of its first adjustment after `after`, waiting up to timeout seconds, or None."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                later = [t for t in self.adjusts if t > after]
                if later:
                    return later[0]
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))

    def count(self):
        with self.cond:
            return len(self.adjusts)

    def stop(self):
        """Closing its stdin makes it stop the script and undo its mounts; then kill by PID if need be."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # unshare --kill-child: everything in the namespace dies with it
            self.proc.wait()
