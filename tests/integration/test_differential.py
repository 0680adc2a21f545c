# SPDX-License-Identifier: GPL-2.0-or-later
"""Differential test: the original bash ksmtuned and ours, same scenarios, same KSM state after each step.

Two originals: Debian's script as its package ships it, and Proxmox VE's, built here from Debian's by
applying the changes Proxmox's ksm-control-daemon 1.5 makes to the same script (see proxmox_script());
each scenario names the one it runs against. Against Debian's, ours runs with its defaults (Fedora's and
RHEL's guest match by name: the guests are named so that both find them), and once with Debian's match.
Against Proxmox's, ours runs with KSM_DEFAULTS=proxmox from a drop-in, as the Debian package installs it on
Proxmox VE hosts (or as a -Ddefaults=proxmox build has it).

The original hard-codes /etc/ksmtuned.conf, /proc/meminfo and /sys/kernel/mm/ksm, so the test re-executes
itself as PID 1 of a private mount and PID namespace (`unshare --kill-child`: everything it starts dies
with it, and the mounts vanish with the namespace). Inside:
  - a tmpfs over /sys/kernel/mm/ksm holds fake knobs for the original; ours gets its own fake directory
    through --ksm-dir;
  - a fake meminfo file is bind-mounted over /proc/meminfo, which both read;
  - an overlay over /etc (upper layer in a temporary directory) lets each scenario write its own
    /etc/ksmtuned.conf without ever touching the host's /etc; ours reads the same file through --config;
  - fake guests (tests/helpers/fake-guest) hold real memory, named so that both programs count them
    (argv "qemu-system-x86_64 ... -enable-kvm", comm "qemu-system-x86"), and decoys neither counts;
    for Proxmox, processes named "kvm", alone or as a parent and child sharing all their pages (so each
    one's PSS is half its RSS, as merged guests' is), and decoys named otherwise.

Both run with KSM_MONITOR_INTERVAL=3600, so only SIGUSR1 makes them adjust. Ours also adjusts once at
start-up, the original does not (it waits a whole interval): so step 1 of a scenario is ours' start-up
adjustment against the original's first SIGUSR1, both on step 1's meminfo and guests, and from then on
ours' adjustment #k is compared with the original's #k. (Making ours' start-up a no-op stop instead, with
no guests, does not work for the exact-boundary scenarios: they size MemTotal from step 1's guests, and
the RSS of a guest started again differs by some kB; this way the same processes live through a scenario.)

The original is the oracle: after every step, run, pages_to_scan and sleep_millisecs must be equal in both
directories, and so must the inputs both logged (total, free, thres, committed). A Python model of the
documented policy is printed alongside, to show which branch a step meant to hit.

A PSS is not a fixed figure: the file-backed pages a guest shares with the rest of the host (libc, its
binary) count a share that changes whenever another process maps or unmaps them, and both programs read
it at different instants. So where guests are counted by PSS, committed figures may differ by up to those
pages (each counted guest's Rss - Anonymous), and the scenarios keep every decision far from that margin;
the anonymous memory, shared only among the fakes, counts exactly.

Run by meson (suite 'real') through pytest, or by hand as root: KSMTUNED=... FAKE_GUEST=... python3 -m pytest
test_differential.py [-k SCENARIO-SUBSTRING]. pytest collects one test outside, which runs pytest again as PID
1 of the namespace, where each scenario is a test. The original comes from `apt-get download ksmtuned`,
cached under $BUILD_ROOT/original-ksmtuned/.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ksmtest import (FAKE_GUEST, KSMTUNED, REAL_KSM, Daemon, ksm_values, make_ksm_dir,  # noqa: E402
                     meminfo_text, need_root, read, skip_or_fail, wait_for, write)

try:
    import pytest
except ImportError:  # imported by bench/, which needs only the harness
    pytest = None

INNER = os.environ.get("KSMDIFF_INNER") == "1"

ETC_CONF = "/etc/ksmtuned.conf"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
KNOBS = ("run", "pages_to_scan", "sleep_millisecs")
DEFAULTS = {"KSM_SLEEP_MSEC": 10, "KSM_NPAGES_BOOST": 300, "KSM_NPAGES_DECAY": -50, "KSM_NPAGES_MIN": 64,
            "KSM_NPAGES_MAX": 1250, "KSM_THRES_COEF": 20, "KSM_THRES_CONST": 2048}

# What a fake process looks like to both programs: argv[0], extra arguments, comm.
KINDS = {
    "guest": ("qemu-system-x86_64", ["-name", "guest", "-enable-kvm", "-m", "1024"], "qemu-system-x86"),
    "img": ("qemu-img", ["convert", "-enable-kvm"], "qemu-img"),
    "shell": ("bash", ["qemu-system-x86_64", "-enable-kvm"], "bash"),
    # RHEL's guest, which Debian's command-line match misses; one that only Debian's match finds.
    "qemu-kvm": ("qemu-kvm", ["-name", "rhel"], "qemu-kvm"),
    "qemu-worker": ("qemu-system-x86_64", ["-name", "deb", "-enable-kvm"], "qemu-worker"),
    # Proxmox VE starts its guests as /usr/bin/kvm; "kvm-pair" is two of them sharing every page.
    "kvm": ("kvm", ["-id", "100", "-name", "vm100", "-machine", "accel=kvm"], "kvm"),
    "kvm-pair": ("kvm", ["-id", "101", "-name", "vm101", "--fork"], "kvm"),
    "kvm-helper": ("kvm", ["-id", "102", "-name", "vm102"], "kvm-helper"),
}
# The kinds each original counts as guests.
COUNTED = {"debian": {"guest", "qemu-worker"}, "proxmox": {"kvm", "kvm-pair"}}


# ---------------------------------------------------------------- the original, fetched at run time

def original_cache():
    build = os.environ.get("BUILD_ROOT") or os.path.join(tempfile.gettempdir(), f"ksmtuned-{os.getuid()}")
    return os.path.join(build, "original-ksmtuned")


def fetch_original_deb():
    """Path of Debian's ksmtuned .deb, downloaded once with apt-get into the build directory, or None."""
    cache = original_cache()
    debs = sorted(glob.glob(os.path.join(cache, "ksmtuned_*.deb")))
    if debs:
        return debs[-1]
    with tempfile.TemporaryDirectory(prefix="ksmtuned-apt-") as tmp:
        r = subprocess.run(["apt-get", "download", "ksmtuned"], cwd=tmp, capture_output=True, text=True)
        debs = glob.glob(os.path.join(tmp, "ksmtuned_*.deb"))
        if r.returncode != 0 or not debs:
            print(r.stdout + r.stderr, flush=True)
            return None
        os.makedirs(cache, exist_ok=True)
        return shutil.copy(debs[0], cache)


def extract_original(deb, dest):
    """Unpack the .deb into dest; return the path of its ksmtuned script."""
    subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
    return os.path.join(dest, "usr/sbin/ksmtuned")


def substitute(text, old, new, what):
    """text with old replaced by new; fails loudly unless old occurs exactly once (the upstream changed)."""
    n = text.count(old)
    if n != 1:
        raise RuntimeError(f"{what}: expected {old!r} exactly once, found it {n} times")
    return text.replace(old, new)


def proxmox_script(debian_script, dest):
    """Proxmox VE's ksmtuned, from Debian's script and the changes ksm-control-daemon 1.5's patches make.

    Its guests are the processes named kvm, counted with `ps -C kvm -o $KSM_PS_METRIC` (pss unless the
    configuration says rsz), and KSM_SLEEP_MSEC defaults to 100. What its patches change besides, and this
    leaves as Debian has it: awk's printf "%.0f" for the sums (so that large ones never print as 1e+09), and
    a plain `sleep` in the loop, which a SIGUSR1 does not cut short (this test drives both originals with
    SIGUSR1). Neither decides anything differently.
    """
    text = read(debian_script)
    text = substitute(text, "KSM_SLEEP_MSEC=${KSM_SLEEP_MSEC:-10}\n", "KSM_SLEEP_MSEC=${KSM_SLEEP_MSEC:-100}\n",
                      "Debian's script")
    text = substitute(text, "KSM_THRES_CONST=${KSM_THRES_CONST:-2048}\n",
                      "KSM_THRES_CONST=${KSM_THRES_CONST:-2048}\nKSM_PS_METRIC=${KSM_PS_METRIC:-pss}\n",
                      "Debian's script")
    text = substitute(text, "    pidlist=$(pgrep -f -d ' ' '^qemu-system.*-enable-kvm')\n"
                            "    if [ -n \"$pidlist\" ]; then\n"
                            "        ps -p \"$pidlist\" -o rsz=\n"
                            "    fi | awk",
                      "    ps -C kvm -o \"$KSM_PS_METRIC=\" | awk", "Debian's script")
    path = os.path.join(dest, "ksmtuned")
    os.makedirs(dest, exist_ok=True)
    write(path, text)
    return path


PVE_METRIC = "# KSM_PS_METRIC=pss\n"


def proxmox_conf(debian_conf):
    """Proxmox VE's /etc/ksmtuned.conf as it ships: Debian's, showing its sleep default and KSM_PS_METRIC."""
    text = substitute(read(debian_conf), "# KSM_SLEEP_MSEC=10\n", "# KSM_SLEEP_MSEC=100\n", "Debian's ksmtuned.conf")
    return substitute(text, "# KSM_THRES_CONST=2048\n",
                      "# KSM_THRES_CONST=2048\n\n# How guest memory is counted (ps -o): pss or rsz.\n" + PVE_METRIC,
                      "Debian's ksmtuned.conf")


def need_original():
    deb = fetch_original_deb()
    if not deb:
        skip_or_fail("`apt-get download ksmtuned` failed (no network, or `apt-get update` never ran)")
    return deb


# ---------------------------------------------------------------- the private namespace

def namespace_command():
    """The unshare command that runs the rest as PID 1 of a private mount and PID namespace (everything in
    it dies with it), once it is known to work here."""
    if not shutil.which("unshare"):
        skip_or_fail("unshare (util-linux) is missing")
    base = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child"]
    probe = subprocess.run(base + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        skip_or_fail(f"unshare does not work here: {probe.stderr.strip()}")
    return base


def reexec_in_namespace(env):
    """Become PID 1 of a private mount and PID namespace; only returns (as that PID 1) if it worked."""
    if os.environ.get("KSMDIFF_INNER") == "1":
        return
    base = namespace_command()
    sys.stdout.flush()
    os.execvpe("unshare", base + [sys.executable] + sys.argv, dict(os.environ, KSMDIFF_INNER="1", **env))


def mount(*args):
    subprocess.run(["mount", *args], check=True)


class Mounts:
    """The fake KSM directory, /proc/meminfo and /etc/ksmtuned.conf of the namespace."""

    def __init__(self, tmp):
        self.meminfo = os.path.join(tmp, "meminfo")
        write(self.meminfo, meminfo_text(16777216, 16000000))
        up, work = os.path.join(tmp, "etc-upper"), os.path.join(tmp, "etc-work")
        os.makedirs(up)
        os.makedirs(work)
        try:
            mount("-t", "tmpfs", "-o", "size=1m,mode=0755", "ksmdiff", REAL_KSM)
            mount("--bind", self.meminfo, "/proc/meminfo")
            mount("-t", "overlay", "ksmdiff-etc", "-o", f"lowerdir=/etc,upperdir={up},workdir={work}", "/etc")
        except subprocess.CalledProcessError as e:
            skip_or_fail(f"cannot set up the namespace's mounts: {e}")
        self.mounted = ["/etc", "/proc/meminfo", REAL_KSM]
        # Drop-ins the host may have would apply to ours only; removing them here only whites them out
        # in the overlay's upper layer.
        shutil.rmtree(ETC_CONF + ".d", ignore_errors=True)

    def set_meminfo(self, total, free, buffers=0, cached=0):
        # Rewrite in place: the bind mount follows the inode, not the name.
        with open(self.meminfo, "w") as f:
            f.write(meminfo_text(total, free, buffers, cached))

    def close(self):
        for m in self.mounted:
            subprocess.run(["umount", "-l", m], check=False)


# ---------------------------------------------------------------- fake guests

def start_fake(kind, mib, fake_guest=None):
    argv0, extra, comm = KINDS[kind]
    p = subprocess.Popen([argv0, str(mib), "--steady", *extra], executable=fake_guest or FAKE_GUEST,
                         stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, env=dict(os.environ, FAKE_GUEST_COMM=comm))
    line = p.stdout.readline()
    p.child_pid = None  # with --fork: the child, which shares every page with p
    if line.startswith(b"child "):
        p.child_pid = int(line.split()[1])
        line = p.stdout.readline()
    # With --steady, both hold every page they map, locked, before "ready": their RSS is settled.
    if line != b"ready\n":
        p.kill()
        p.wait()
        raise RuntimeError(f"fake-guest {kind} {mib} did not start")
    return p


def rss_kb(pid):
    return int(read(f"/proc/{pid}/statm").split()[1]) * PAGE_KB


def rollup(pid):
    """/proc/PID/smaps_rollup's kB figures by name."""
    out = {}
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines()[1:]:
        name, value = line.split(":", 1)
        out[name] = int(value.split()[0])
    return out


class Fakes:
    """The fake guests and decoys of the current step, started and stopped by PID."""

    def __init__(self):
        self.running = []  # (spec, Popen), spec = (kind, mib)

    def set(self, specs):
        wanted = list(specs)
        keep = []
        for spec, p in self.running:
            if spec in wanted:
                wanted.remove(spec)
                keep.append((spec, p))
            else:
                stop_process(p)
        self.running = keep + [(spec, start_fake(*spec)) for spec in wanted]

    def pids(self, kinds):
        return [pid for (kind, _), p in self.running if kind in kinds for pid in (p.pid, p.child_pid) if pid]

    def committed(self, kinds=("guest",), metric="rss"):
        """The memory of the fakes of these kinds, as ps -o rsz= or pss= counts it; with pss, also the margin
        by which another reading may differ (their file-backed pages, whose PSS moves with the host)."""
        if metric == "rss":
            return sum(rss_kb(pid) for pid in self.pids(kinds)), 0
        figures = [rollup(pid) for pid in self.pids(kinds)]
        return sum(f["Pss"] for f in figures), sum(f["Rss"] - f["Anonymous"] for f in figures)

    def close(self):
        self.set(())


def stop_process(p, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- the two programs

def proc_stat(pid):
    """(comm, state, ppid) of a process, or None when it is gone."""
    try:
        s = read(f"/proc/{pid}/stat")
    except OSError:
        return None
    head, tail = s.rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], fields[0], int(fields[1])


def children(pid):
    """(pid, comm) of the live children of pid."""
    try:
        pids = [int(c) for c in read(f"/proc/{pid}/task/{pid}/children").split()]
    except OSError:  # no CONFIG_PROC_CHILDREN: look at every process
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    out = []
    for c in pids:
        st = proc_stat(c)
        if st and st[2] == pid and st[1] != "Z":
            out.append((c, st[0]))
    return out


ORIG_DONE = re.compile(r": (KSMCTL start \d+ \d+|.* stop ksm)$", re.M)


class Original:
    """Debian's ksmtuned: started as a script that backgrounds its loop and writes the loop's PID file.

    With debug (DEBUG=1, LOGFILE), an adjustment is done when its last log line is there; without (the
    benchmark: DEBUG makes it fork /bin/date per line), when the loop waits for a new sleep again.
    """

    def __init__(self, script, tmp, debug=True):
        self.log = os.path.join(tmp, "original.log")
        pidfile = os.path.join(tmp, "original.pid")
        for f in (self.log, pidfile):
            if os.path.exists(f):
                os.unlink(f)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PIDFILE": pidfile, "KSM_MONITOR_INTERVAL": "3600",
               "LC_ALL": "C"}
        if debug:
            env.update(DEBUG="1", LOGFILE=self.log)
        self.debug = debug
        self.main = subprocess.Popen(["bash", script], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # It exits once the loop is in the background; reaped here for its rusage (the benchmark's).
        self.main_rusage = os.wait4(self.main.pid, 0)[2]
        self.main.returncode = 0
        self.loop = int(read(pidfile))
        self.last_sleep = 0
        self.count = 0
        if not wait_for(self.idle, 30):
            raise RuntimeError("the original's loop never reached its `wait`")

    def idle(self):
        """The sleep the loop waits for, once it waits for one newer than at the last signal, else 0.

        A SIGUSR1 that comes while the loop adjusts is not lost but runs the trap before the next `wait`,
        which then waits the whole interval: only a loop blocked in `wait` (wchan do_wait) for a sleep it
        started after the last signal is ready for the next one.
        """
        try:
            wchan = read(f"/proc/{self.loop}/wchan")
        except OSError:
            return 0
        sleeps = [pid for pid, comm in children(self.loop) if comm == "sleep"]
        if wchan != "do_wait" or not sleeps or max(sleeps) <= self.last_sleep:
            return 0
        return max(sleeps)

    def logged(self):
        return read(self.log) if os.path.exists(self.log) else ""

    def adjustments(self):
        return len(ORIG_DONE.findall(self.logged()))

    def adjust(self, timeout=30):
        """Send SIGUSR1 once the loop waits, then wait for the adjustment's last log line (or the next wait)."""
        self.last_sleep = wait_for(self.idle, timeout)
        if not self.last_sleep:
            raise RuntimeError("the original's loop is not waiting")
        os.kill(self.loop, signal.SIGUSR1)
        self.count += 1
        done = (lambda: self.adjustments() >= self.count) if self.debug else self.idle
        if not wait_for(done, timeout):
            raise RuntimeError(f"the original did not finish adjustment {self.count}")

    def inputs(self):
        """The inputs of its last adjustment: total, thres (start-up), free, committed (per adjustment)."""
        text = self.logged()
        out = {}
        for key in ("total", "thres"):
            m = re.search(rf": {key} (\d+)$", text, re.M)
            if m:
                out[key] = int(m.group(1))
        m = re.findall(r": committed (\d+) free (\d+)$", text, re.M)
        if m:
            out["committed"], out["free"] = int(m[-1][0]), int(m[-1][1])
        return out

    def stop(self):
        """Kill the loop, then the sleeps it left behind (they become our children), by PID."""
        sleeps = [pid for pid, comm in children(self.loop) if comm == "sleep"]
        ru = None
        try:
            os.kill(self.loop, signal.SIGTERM)
            ru = os.wait4(self.loop, 0)[2]
        except (ProcessLookupError, ChildProcessError):
            pass
        for pid in sleeps:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        return ru


OURS_LINE = re.compile(r"adjustment #(\d+)\b(.*)$", re.M)


class Ours:
    """Our ksmtuned in the foreground with --debug: one 'adjustment #N' line per adjustment."""

    def __init__(self, conf, ksm_dir, extra=()):
        self.daemon = Daemon([KSMTUNED, "--config", conf, "--ksm-dir", ksm_dir, "--debug", *extra],
                             stdin=subprocess.DEVNULL)
        self.count = 1
        self.wait(1)  # its start-up adjustment

    def lines(self):
        return OURS_LINE.findall(self.daemon.output())

    def wait(self, n, timeout=30):
        if not wait_for(lambda: len(self.lines()) >= n or not self.daemon.alive(), timeout):
            raise RuntimeError(f"ours did not log adjustment #{n}:\n{self.daemon.output()[-2000:]}")
        if not self.daemon.alive():
            raise RuntimeError(f"ours exited ({self.daemon.proc.returncode}):\n{self.daemon.output()[-2000:]}")

    def adjust(self):
        self.daemon.signal(signal.SIGUSR1)
        self.count += 1
        self.wait(self.count)

    def extra_adjustments(self):
        return len(self.lines()) - self.count

    def inputs(self):
        """The figures named in its last adjustment line (whatever it chose to print)."""
        rest = self.lines()[-1][1]
        return {k: int(m.group(1)) for k in ("total", "free", "thres", "committed")
                if (m := re.search(rf"\b{k} (\d+)", rest))}

    def last_line(self):
        return "adjustment #%s%s" % self.lines()[-1]

    def stop(self):
        return self.daemon.stop()


# ---------------------------------------------------------------- scenarios

class Step:
    def __init__(self, free, buffers=0, cached=0, fakes=(), note=""):
        self.free, self.buffers, self.cached = free, buffers, cached
        self.fakes = tuple(fakes)
        self.note = note


class Scenario:
    """A configuration, a MemTotal (or a function of step 1's committed memory) and its steps.

    original: "debian" or "proxmox", the script ours is compared with; dropins: {name: text} in
    /etc/ksmtuned.conf.d/, which only ours reads; metric: how the original counts guests (rss or pss).
    """

    def __init__(self, name, about, steps, settings=None, total=16777216, conf=None, original="debian",
                 dropins=None, metric="rss"):
        self.name = name
        self.about = about
        base = dict(DEFAULTS, KSM_SLEEP_MSEC=100) if original == "proxmox" else DEFAULTS
        self.settings = dict(base, **(settings or {}))
        self.conf = conf if conf is not None else conf_text(settings or {})
        self.total = total
        self.steps = steps
        self.original = original
        self.dropins = dropins or {}
        self.metric = metric


def conf_text(settings):
    return "".join(f"{k}={v}\n" for k, v in settings.items()) + "KSM_MONITOR_INTERVAL=3600\n"


def model(s, total, free, committed, npages):
    """The documented policy; printed next to the results to show which branch a step hits."""
    sleep = max(s["KSM_SLEEP_MSEC"] * 16 * 1024 * 1024 // total, 10)
    thres = max(total * s["KSM_THRES_COEF"] // 100, s["KSM_THRES_CONST"])
    if committed + thres < total and free > thres:
        return "stop", npages
    branch = "boost" if free < thres else "decay"
    npages += s["KSM_NPAGES_BOOST"] if free < thres else s["KSM_NPAGES_DECAY"]
    if npages < s["KSM_NPAGES_MIN"]:
        npages = s["KSM_NPAGES_MIN"]
    elif npages > s["KSM_NPAGES_MAX"]:
        npages = s["KSM_NPAGES_MAX"]
    return f"{branch} {npages} {sleep}", npages


def guests(*mibs):
    return tuple(("guest", m) for m in mibs)


def decoys(*mibs):
    kinds = ("img", "shell")
    return tuple((kinds[i % 2], m) for i, m in enumerate(mibs))


USER_CONF = """\
# Configuration file for ksmtuned.

# How long ksmtuned should sleep between tuning adjustments
KSM_MONITOR_INTERVAL=3600

# Millisecond sleep between ksm scans for 16Gb server.
# Smaller servers sleep more, bigger sleep less.
KSM_SLEEP_MSEC="20"

KSM_NPAGES_BOOST='700'
KSM_NPAGES_DECAY="-150"
# KSM_NPAGES_MIN=64
KSM_NPAGES_MAX=2500

KSM_THRES_COEF=30
# KSM_THRES_CONST=2048

# uncomment the following if you want ksmtuned debug info

# LOGFILE=/var/log/ksmtuned
# DEBUG=1
"""

# Debian's guest match (its command line), in place of ours by process name.
DEBIAN_MATCH_CONF = """\
KSM_GUEST_COMM=
KSM_GUEST_CMDLINE='^qemu-system.*-enable-kvm'
KSM_MONITOR_INTERVAL=3600
"""

INLINE_CONF = """\
KSM_MONITOR_INTERVAL=3600   # no timer while testing
KSM_NPAGES_BOOST=400 # boost harder
  KSM_NPAGES_MAX=1000
"""


# What ours reads besides Proxmox's file: KSM_DEFAULTS=proxmox as the Debian package writes it on Proxmox VE,
# and the interval that the original takes from its environment here.
PVE_DROPINS = {"50-proxmox-defaults.conf": "KSM_DEFAULTS=proxmox\n", "90-test.conf": "KSM_MONITOR_INTERVAL=3600\n"}


def proxmox_scenarios(shipped):
    """Proxmox VE's script and file, as shipped and as an admin edited it; ours with KSM_DEFAULTS=proxmox."""
    pair = (("kvm-pair", 96),)
    one = (("kvm", 96),)
    pve_decoys = (("guest", 64), ("kvm-helper", 64))
    rsz = substitute(shipped, PVE_METRIC, "KSM_PS_METRIC=rsz\nKSM_NPAGES_BOOST=500\n", "Proxmox's file")
    sleep20 = substitute(substitute(shipped, "# KSM_SLEEP_MSEC=100\n", "KSM_SLEEP_MSEC=20\n", "Proxmox's file"),
                         "# KSM_THRES_COEF=20\n", "KSM_THRES_COEF=30\n", "Proxmox's file")
    return [
            Scenario("pve-shipped-8g", "Proxmox's file as shipped, 8 GiB: sleep 200 (the original's 20)", [
                    Step(5000000, note="stop"),
                    Step(1000000, note="boost"), Step(1000000),
                    Step(1677721, note="free == thres: decay"),
                    Step(1677722, note="stop"),
            ], total=8388608, conf=shipped, original="proxmox", dropins=PVE_DROPINS),
            # MemTotal twice step 1's PSS: the pair's PSS + thres fits, its RSS + thres would not.
            Scenario("pve-shipped-pss", "Proxmox's file as shipped: guests by PSS, a pair whose PSS is half its RSS", [
                    Step(150000, fakes=pair, note="PSS + thres < total: stop (by RSS: start)"),
                    Step(20000, fakes=pair, note="boost"),
                    Step(150000, fakes=pair + pve_decoys, note="qemu-system-x86 and kvm-helper not counted: stop"),
                    Step(150000, fakes=pair + one, note="a second guest: decay"),
                    Step(20000, fakes=pair + one, note="boost"),
                    Step(150000, fakes=one, note="the pair gone: stop"),
            ], total=lambda c: 2 * c, conf=shipped, original="proxmox", dropins=PVE_DROPINS, metric="pss"),
            Scenario("pve-admin-rsz", "Proxmox's file with KSM_PS_METRIC=rsz and KSM_NPAGES_BOOST=500: by RSS", [
                    Step(150000, fakes=pair, note="RSS + thres > total: decay to MIN (by PSS: stop)"),
                    Step(20000, fakes=pair, note="boost"),
                    Step(150000, fakes=pve_decoys, note="decoys only: stop"),
            ], settings={"KSM_NPAGES_BOOST": 500}, total=lambda c: c, conf=rsz, original="proxmox",
                    dropins=PVE_DROPINS),
            Scenario("pve-admin-sleep", "Proxmox's file with KSM_SLEEP_MSEC=20 and KSM_THRES_COEF=30, read before "
                     "KSM_DEFAULTS: sleep 40", [
                    Step(5000000, fakes=pair, note="stop"),
                    Step(1000000, fakes=pair, note="boost"),
                    Step(2516582, fakes=pair, note="free == thres: decay"),
                    Step(2516583, fakes=pair, note="stop"),
            ], settings={"KSM_SLEEP_MSEC": 20, "KSM_THRES_COEF": 30}, total=8388608, conf=sleep20,
                    original="proxmox", dropins=PVE_DROPINS, metric="pss"),
    ]


def scenarios(pve_conf=None):
    two = guests(160, 96) + decoys(128, 128)
    exact = guests(64, 32)
    return [
            Scenario("16g-defaults", "defaults on 16 GiB: stop, boost to MAX, free == thres, free == thres +- 1", [
                    Step(9000000, note="stop"),
                    Step(1000000, 200000, 300000, note="boost"),
                    Step(1000000), Step(1000000), Step(1000000),
                    Step(1000000, note="clamped at MAX"),
                    Step(3000000, 255443, 100000, note="free == thres: decay"),
                    Step(3355442, note="free == thres - 1: boost"),
                    Step(3355444, note="free == thres + 1, nothing committed: stop"),
                    Step(3355443, note="npages kept while stopped: decay"),
            ]),
            Scenario("guest-counting", "guest counting on a 300000 kB host: decoys ignored, decay to MIN, boost", [
                    Step(200000, note="no guests: stop"),
                    Step(200000, fakes=decoys(128, 128), note="decoys only: stop"),
                    Step(200000, fakes=two, note="guests committed: decay, clamped at MIN"),
                    Step(10000, fakes=two, note="boost"),
                    Step(10000, fakes=two),
                    Step(200000, fakes=two, note="decay"),
                    Step(200000, fakes=two),
                    Step(200000, fakes=guests(160) + decoys(128, 128), note="one guest gone: stop"),
                    Step(60000, fakes=guests(160), note="free == thres: decay"),
                    Step(200000, note="all gone: stop"),
            ], total=300000),
            Scenario("exact-total", "committed + thres == total exactly (COEF 0, CONST 100000)", [
                    Step(150000, fakes=exact, note="committed + thres == total: decay, clamped at MIN"),
                    Step(99999, fakes=exact, note="boost"),
                    Step(100000, fakes=exact, note="free == thres: decay"),
                    Step(150000, note="guests gone: stop"),
            ], settings={"KSM_THRES_COEF": 0, "KSM_THRES_CONST": 100000}, total=lambda c: c + 100000),
            Scenario("exact-total-minus-1", "committed + thres == total - 1 (COEF 0, CONST 100000)", [
                    Step(150000, fakes=exact, note="committed + thres < total: stop"),
                    Step(100000, fakes=exact, note="free == thres: decay"),
                    Step(100001, fakes=exact, note="stop"),
            ], settings={"KSM_THRES_COEF": 0, "KSM_THRES_CONST": 100000}, total=lambda c: c + 100001),
            Scenario("1g-host", "1 GiB host: sleep 160", [
                    Step(500000, note="stop"),
                    Step(100000, note="boost"), Step(100000),
                    Step(209715, note="free == thres: decay"),
                    Step(209716, note="stop"),
            ], total=1048576),
            Scenario("odd-total", "odd MemTotal: truncating divisions (sleep 13, thres 2469135)", [
                    Step(2469135, note="free == thres: decay to MIN"),
                    Step(2469134, note="boost"),
                    Step(2469136, note="stop"),
            ], total=12345678),
            Scenario("256g-host", "256 GiB host: sleep floor 10", [
                    Step(200000000, note="stop"),
                    Step(50000000, note="boost"),
                    Step(53687091, note="free == thres: decay"),
                    Step(2000000000, note="stop"),
            ], total=268435456),
            Scenario("custom-settings", "non-default settings: boost 500, decay -400, MIN 200, MAX 1800, 35 %, 25 ms", [
                    Step(1000000, note="boost"), Step(1000000), Step(1000000),
                    Step(1000000, note="clamped at MAX"), Step(1000000),
                    Step(1468006, note="free == thres: decay"), Step(1468006), Step(1468006),
                    Step(1468006, note="clamped at MIN"), Step(1468006),
                    Step(1468007, note="stop"),
            ], settings={"KSM_SLEEP_MSEC": 25, "KSM_NPAGES_BOOST": 500, "KSM_NPAGES_DECAY": -400,
                         "KSM_NPAGES_MIN": 200, "KSM_NPAGES_MAX": 1800, "KSM_THRES_COEF": 35,
                         "KSM_THRES_CONST": 4096}, total=4194304),
            Scenario("const-threshold", "THRES_CONST above the COEF threshold (COEF 1, CONST 500000)", [
                    Step(499999, note="boost"),
                    Step(500000, note="free == thres: decay"),
                    Step(500001, note="stop"),
                    Step(400000, note="boost"),
            ], settings={"KSM_THRES_COEF": 1, "KSM_THRES_CONST": 500000}),
            Scenario("user-file", "a user's file: comments, blank lines, double and single quotes", [
                    Step(1000000, note="boost"), Step(1000000), Step(1000000),
                    Step(1000000, note="clamped at MAX"),
                    Step(2516582, note="free == thres: decay"),
                    Step(2516583, note="stop"),
            ], settings={"KSM_SLEEP_MSEC": 20, "KSM_NPAGES_BOOST": 700, "KSM_NPAGES_DECAY": -150,
                         "KSM_NPAGES_MAX": 2500, "KSM_THRES_COEF": 30},
                    total=8388608, conf=USER_CONF),
            Scenario("inline-comments", "trailing comments and leading blanks", [
                    Step(100000, note="boost"), Step(100000),
                    Step(100000, note="clamped at MAX"),
            ], settings={"KSM_NPAGES_BOOST": 400, "KSM_NPAGES_MAX": 1000}, conf=INLINE_CONF),
            Scenario("debian-guest-match", "Debian's match by command line: RHEL's qemu-kvm not counted, "
                     "qemu-worker counted", [
                    Step(200000, fakes=(("qemu-kvm", 128), ("qemu-worker", 160)), note="stop (with qemu-kvm: start)"),
                    Step(10000, fakes=(("qemu-kvm", 128), ("qemu-worker", 160)), note="boost"),
                    Step(200000, fakes=(("qemu-kvm", 128), ("qemu-worker", 160)) + guests(96), note="decay"),
                    Step(200000, note="all gone: stop"),
            ], total=300000, conf=DEBIAN_MATCH_CONF),
    ] + (proxmox_scenarios(pve_conf) if pve_conf else [])


# ---------------------------------------------------------------- running them

class Env:
    """What every scenario shares: the namespace mounts, the fakes, our KSM directory, the original."""

    def __init__(self, tmp, script, scripts=None):
        self.tmp = tmp
        self.script = script
        self.scripts = scripts or {"debian": script}
        self.mounts = Mounts(tmp)
        self.fakes = Fakes()
        self.ours_ksm = os.path.join(tmp, "ours-ksm")
        self.tally = {}

    def close(self):
        self.fakes.close()
        self.mounts.close()


def check(label, fn):
    """Run one step; print its verdict (and why it failed); True if it passed."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - a step's failure is reported, and the scenario goes on
        print(f"FAIL {label}", flush=True)
        traceback.print_exc(file=sys.stdout)
        return False
    print(f"ok   {label}", flush=True)
    return True


def model_agrees(expect, knobs):
    if expect == "stop":
        return knobs["run"] == "0"
    _, npages, sleep = expect.split()
    return knobs == {"run": "1", "pages_to_scan": npages, "sleep_millisecs": sleep}


def compare(orig, ours, ours_ksm, committed, expect, margin=0):
    """One step's verdict: the knobs of both directories, then the inputs both logged.

    margin: how far two readings of the guests' memory may differ (PSS: see the module's doc), else 0.
    """
    # Each program logs an adjustment before it has written every knob: wait for them (a bound, not a pace).
    ok = wait_for(lambda: ksm_values(REAL_KSM, KNOBS) == ksm_values(ours_ksm, KNOBS), 30)
    a, b = ksm_values(REAL_KSM, KNOBS), ksm_values(ours_ksm, KNOBS)
    agree = "" if model_agrees(expect, a) else " (NOTE: the model disagrees with the original)"
    within = f" +- {margin}" if margin else ""
    print(f"     committed {committed}{within}: model {expect}; original {a}{agree}", flush=True)
    counted = orig.inputs().get("committed")
    if counted is None or abs(counted - committed) > margin:
        raise AssertionError(f"harness: the original counted {counted} kB of guests, the fake guests hold "
                             f"{committed}{within} kB: decoys or guests are not what they seem")
    if not ok:
        raise AssertionError(f"KSM state differs: original {a}, ours {b}\n     ours: {ours.last_line()}")
    ia, ib = orig.inputs(), ours.inputs()
    diff = {k: (ia[k], ib[k]) for k in ia.keys() & ib.keys()
            if abs(ia[k] - ib[k]) > (margin if k == "committed" else 0)}
    if diff:
        raise AssertionError(f"inputs differ (original, ours): {diff}\n     ours: {ours.last_line()}")
    if ours.extra_adjustments():
        raise AssertionError(f"ours made {ours.extra_adjustments()} adjustment(s) nobody asked for")


def write_conf(sc):
    """The scenario's /etc/ksmtuned.conf, and its drop-ins (only ours reads them) instead of any before."""
    write(ETC_CONF, sc.conf)
    shutil.rmtree(ETC_CONF + ".d", ignore_errors=True)
    for name, text in sc.dropins.items():
        write(os.path.join(ETC_CONF + ".d", name), text)


def run_scenario(env, sc):
    """Step 1 starts both (ours adjusts by itself, the original on a SIGUSR1); later steps signal both.
    Returns how many steps failed."""
    first = sc.steps[0]
    kinds = COUNTED[sc.original]
    env.fakes.set(first.fakes)
    probed, _ = env.fakes.committed(kinds, sc.metric)
    total = sc.total(probed) if callable(sc.total) else sc.total
    write_conf(sc)
    make_ksm_dir(REAL_KSM)
    make_ksm_dir(env.ours_ksm)
    run = {"npages": 0}
    broken = []

    def adjust(i):
        if i == 1:
            run["orig"] = Original(env.scripts[sc.original], env.tmp)
            run["ours"] = Ours(ETC_CONF, env.ours_ksm)
            run["orig"].adjust()
        else:
            run["orig"].adjust()
            run["ours"].adjust()

    def step(i, st):
        env.fakes.set(st.fakes)
        committed, margin = env.fakes.committed(kinds, sc.metric)
        if st.fakes == first.fakes and abs(committed - probed) > margin:
            raise AssertionError(f"the guests' {sc.metric.upper()} moved from {probed} to {committed} kB "
                                 "during the scenario")
        env.mounts.set_meminfo(total, st.free, st.buffers, st.cached)
        expect, run["npages"] = model(sc.settings, total, st.free + st.buffers + st.cached, committed,
                                      run["npages"])
        try:
            adjust(i)
        except Exception:
            broken.append(i)  # no use going on with this scenario
            raise
        compare(run["orig"], run["ours"], env.ours_ksm, committed, expect, margin)

    failed = 0
    try:
        for i, st in enumerate(sc.steps, 1):
            failed += not check(f"{sc.name} #{i} {st.note}".rstrip(), lambda i=i, st=st: step(i, st))
            if broken:
                left = len(sc.steps) - i
                print(f"FAIL {sc.name}: no adjustment, {left} step(s) left out and counted failed", flush=True)
                failed += left
                break
    finally:
        tally = env.tally.setdefault(sc.original, [0, 0, 0])  # scenarios, steps, steps that matched
        tally[0] += 1
        tally[1] += len(sc.steps)
        tally[2] += len(sc.steps) - failed
        for p in (run.get("orig"), run.get("ours")):
            if p:
                p.stop()
    return failed


# ---------------------------------------------------------------- the tests

def needs():
    need_root("the differential test (mount and PID namespaces)")
    if not KSMTUNED or not os.access(KSMTUNED, os.X_OK):
        skip_or_fail("KSMTUNED does not name our built daemon")
    if not FAKE_GUEST or not os.access(FAKE_GUEST, os.X_OK):
        skip_or_fail("FAKE_GUEST does not name the built fake-guest helper")


def die_with_parent():
    """In the child, before exec: SIGKILL when this process dies (meson's timeout), so that unshare, and with
    it (--kill-child) everything in the namespace, never outlives the test."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


if pytest and not INNER:
    def test_in_private_namespaces(capsys):
        """Outside: pytest again, as PID 1 of a private mount and PID namespace, where each scenario is a test."""
        needs()
        # The inner run is ours: it holds no lock of its own (this process holds the real parts' lock).
        env = {k: v for k, v in os.environ.items() if k != "KSMTEST_REAL_LOCK"}
        env.update(KSMDIFF_INNER="1", KSMDIFF_DEB=need_original())
        base = namespace_command()
        args = [a for a in sys.argv[1:] if a.startswith("-k")] or []
        cmd = base + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rfEs", *args,
                      os.path.abspath(__file__)]
        with capsys.disabled():  # the scenarios' own lines, as they come
            r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        assert r.returncode == 0, f"the scenarios in the namespace: exit status {r.returncode}"

if pytest and INNER:
    # Only the scenarios' names are needed to collect them; Proxmox's are there whatever its file says.
    NAMES = [sc.name for sc in scenarios(PVE_METRIC + "# KSM_SLEEP_MSEC=100\n# KSM_THRES_COEF=20\n")]

    @pytest.fixture(scope="module")
    def diff_env():
        needs()
        tmp = tempfile.mkdtemp(prefix="ksmdiff-")
        env = None
        try:
            script = extract_original(os.environ["KSMDIFF_DEB"], os.path.join(tmp, "original"))
            pve = proxmox_script(script, os.path.join(tmp, "proxmox"))
            pve_conf = proxmox_conf(os.path.join(tmp, "original", "etc", "ksmtuned.conf"))
            env = Env(tmp, script, {"debian": script, "proxmox": pve})
            env.scenarios = {sc.name: sc for sc in scenarios(pve_conf)}
            yield env
        finally:
            if env:
                env.close()
                for name, (n, steps, matched) in sorted(env.tally.items()):
                    print(f"\nagainst {name}'s original: {n} scenarios, {matched} of {steps} steps decided alike",
                          flush=True)
            shutil.rmtree(tmp, ignore_errors=True)

    @pytest.mark.parametrize("name", NAMES)
    def test_scenario(diff_env, name):
        sc = diff_env.scenarios[name]
        print(f"== {sc.name}: {sc.about}", flush=True)
        t = time.monotonic()
        failed = run_scenario(diff_env, sc)
        print(f"   ({time.monotonic() - t:.1f} s)", flush=True)
        assert failed == 0, f"{failed} of {len(sc.steps)} steps differ from the original (see the lines above)"
