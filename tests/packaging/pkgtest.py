# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers of the packaging suite: build the packages from the checkout, a cached Debian 12 root, containers.

Everything lives under BUILD_ROOT/packaging (the meson build directory): the cached root tarball, Debian's
own ksmtuned package, our packages, and one unpacked root per case, removed when the case ends."""

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from ksmtest import REAL_KSM, SOURCE_ROOT, read, skip_or_fail, wait_for  # noqa: E402

BUILD_ROOT = os.environ.get("BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
WORK = os.path.join(BUILD_ROOT, "packaging")
ROOT_TAR = os.path.join(WORK, "bookworm-minbase.tar")
# What a case needs in the root besides minbase: systemd to boot it, our package's libraries (so that
# installing it needs no archive), procps for the original script.
ROOT_INCLUDE = "systemd,systemd-sysv,dbus,libinih1,procps"
PKGS_IN_ROOT = "/opt/ksmtuned-test-packages"
CMD_TIMEOUT = 300
BOOT_TIMEOUT = 60
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0",
       "TERM": "dumb"}


def need_tools(*tools):
    if os.geteuid() != 0:
        skip_or_fail("the packaging suite needs root (dpkg in root trees, systemd-nspawn)")
    for t in tools:
        if not shutil.which(t):
            skip_or_fail(f"{t} is not installed (.ci/dev installs it)")


def run(args, timeout=CMD_TIMEOUT, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check:
        assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
    return r


def debian_mirror():
    """The first bookworm archive of this host's deb822 sources (TESTING.md: the mirror to use)."""
    path = "/etc/apt/sources.list.d/debian.sources"
    for stanza in read(path).split("\n\n"):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
        if "bookworm" in fields.get("Suites", "").split():
            return fields["URIs"].split()[0]
    raise AssertionError(f"no bookworm archive in {path}")


def copy_checkout(dest):
    """The checkout's files (tracked and new, not ignored: no build directories) into dest."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    files = run(["git", "-C", SOURCE_ROOT, "ls-files", "-co", "--exclude-standard", "-z"]).stdout.split("\0")
    for f in filter(None, files):
        src = os.path.join(SOURCE_ROOT, f)
        if not os.path.lexists(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, f), follow_symlinks=False)


@functools.lru_cache(maxsize=None)
def build_deb():
    """dpkg-buildpackage -us -uc -b on a copy of the checkout; returns the .changes file. The unit tests run
    in their own suite, so the package build skips them (nocheck)."""
    need_tools("dpkg-buildpackage", "dh")
    out = os.path.join(WORK, "deb")
    shutil.rmtree(out, ignore_errors=True)
    src = os.path.join(out, "ksmtuned")
    copy_checkout(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck", LC_ALL="C.UTF-8")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, timeout=600)
    changes = [f for f in os.listdir(out) if f.endswith(".changes")]
    assert len(changes) == 1, changes
    return os.path.join(out, changes[0])


def our_deb():
    d = os.path.dirname(build_deb())
    return os.path.join(d, [f for f in os.listdir(d) if re.match(r"ksmtuned_.*\.deb$", f)][0])


@functools.lru_cache(maxsize=None)
def debian_deb():
    """Debian's own ksmtuned package, from this host's archive (cached in the build directory)."""
    d = os.path.join(WORK, "debian-original")
    os.makedirs(d, exist_ok=True)
    found = [f for f in os.listdir(d) if f.endswith(".deb")]
    if not found:
        r = run(["apt-get", "download", "ksmtuned"], cwd=d, check=False)
        found = [f for f in os.listdir(d) if f.endswith(".deb")]
        if not found:
            skip_or_fail(f"apt-get download ksmtuned failed (run apt-get update?): {r.stderr.strip()}")
    return os.path.join(d, found[0])


def root_tarball():
    """A minimal Debian 12 root, made once with mmdebstrap and kept in the build directory."""
    if os.path.exists(ROOT_TAR):
        return ROOT_TAR
    need_tools("mmdebstrap")
    os.makedirs(WORK, exist_ok=True)
    tmp = ROOT_TAR + ".tmp"
    r = run(["mmdebstrap", "--variant=minbase", f"--include={ROOT_INCLUDE}", "--format=tar", "bookworm", tmp,
             f"deb {debian_mirror()} bookworm main"], check=False, timeout=900)
    if r.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        skip_or_fail(f"mmdebstrap could not make a Debian 12 root from {debian_mirror()}:\n{r.stderr[-2000:]}")
    os.rename(tmp, ROOT_TAR)
    return ROOT_TAR


def mounts_under(path):
    path = os.path.realpath(path)
    out = []
    for line in read("/proc/self/mountinfo").splitlines():
        mp = line.split()[4]
        if mp == path or mp.startswith(path + "/"):
            out.append(mp)
    return out


class Root:
    """A fresh copy of the cached root for one case, with the packages bound in; removed at the end."""

    def __init__(self, name):
        self.dir = os.path.join(WORK, "roots", f"{name}-{os.getpid()}")
        self.pkgs = os.path.join(WORK, "pkgs-" + str(os.getpid()))
        self.nspawn = None
        self.init = None
        self.log_path = self.dir + ".log"

    def __enter__(self):
        tar = root_tarball()
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        run(["tar", "-xf", tar, "-C", self.dir])
        # The host's archive, for the case that would fetch something (none does: the root has our
        # package's dependencies already).
        shutil.copy("/etc/apt/sources.list.d/debian.sources", os.path.join(self.dir, "etc/apt/sources.list.d/"))
        os.makedirs(self.pkgs, exist_ok=True)
        return self

    def add_package(self, path):
        shutil.copy(path, self.pkgs)
        return os.path.join(PKGS_IN_ROOT, os.path.basename(path))

    def boot(self):
        """systemd as PID 1 in the root, with the real KSM bound in (TESTING.md: 'systemd')."""
        args = ["systemd-nspawn", "-q", f"--directory={self.dir}", "--register=no", "--keep-unit",
                f"--machine=ksmtuned-pkg-{os.getpid()}", f"--bind={REAL_KSM}", f"--bind-ro={self.pkgs}:{PKGS_IN_ROOT}",
                "-b", "--console=pipe"]
        with open(self.log_path, "w") as log:
            self.nspawn = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.init = wait_for(self.find_init, timeout=BOOT_TIMEOUT, step=0.05)
        assert self.init, f"no init under systemd-nspawn:\n{self.log_tail()}"
        state = wait_for(lambda: self.state() in ("running", "degraded"), timeout=BOOT_TIMEOUT, step=0.1)
        assert state, f"container not booted after {BOOT_TIMEOUT} s: {self.state()!r}\n{self.log_tail()}"

    def find_init(self):
        if self.nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.nspawn.returncode}:\n{self.log_tail()}")
        try:
            for child in read(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children").split():
                status = read(f"/proc/{child}/status")
                nspid = [line for line in status.splitlines() if line.startswith("NSpid:")]
                if nspid and nspid[0].split()[-1] == "1" and read(f"/proc/{child}/comm").strip() == "systemd":
                    return int(child)
        except OSError:
            pass
        return None

    def log_tail(self, lines=40):
        try:
            return "\n".join(read(self.log_path).splitlines()[-lines:])
        except OSError:
            return "(no container log)"

    def state(self):
        r = self.sh("systemctl is-system-running", timeout=10, check=False)
        return r.stdout.strip()

    def sh(self, script, timeout=CMD_TIMEOUT, check=True):
        """A shell command in the booted container, standard input closed (as unattended upgrades run)."""
        assert self.init, "the container is not booted"
        args = ["nsenter", "-t", str(self.init), "-a", "timeout", "--foreground", str(timeout), "sh", "-c", script]
        r = subprocess.run(args, capture_output=True, text=True, env=ENV, stdin=subprocess.DEVNULL,
                           timeout=timeout + 30)
        if check:
            assert r.returncode == 0, f"{script!r} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
        return r

    def apt(self, *args, check=True):
        """apt-get as an unattended upgrade runs it: noninteractive, no terminal, no --force-conf* option."""
        quoted = " ".join(f"'{a}'" for a in args)
        return self.sh(f"DEBIAN_FRONTEND=noninteractive apt-get -y --no-install-recommends {quoted}", check=check)

    def path(self, p):
        return os.path.join(self.dir, p.lstrip("/"))

    def read(self, p):
        with open(self.path(p), "rb") as f:
            return f.read()

    def write(self, p, data):
        with open(self.path(p), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def exists(self, p):
        return os.path.lexists(self.path(p))

    def active(self, unit):
        return self.sh(f"systemctl is-active {unit}", check=False).stdout.strip()

    def enabled(self, unit):
        return self.sh(f"systemctl is-enabled {unit}", check=False).stdout.strip()

    def journal(self, unit):
        return self.sh(f"journalctl --no-pager -o cat -u {unit}", check=False).stdout

    def main_exe(self, unit):
        """The executable of the unit's main process: tells our daemon from the original script."""
        pid = self.sh(f"systemctl show -p MainPID --value {unit}").stdout.strip()
        if pid in ("", "0"):
            return None
        return self.sh(f"readlink /proc/{pid}/exe", check=False).stdout.strip()

    def power_off(self):
        if self.nspawn and self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(15)
            except subprocess.TimeoutExpired:
                print(f"warning: systemd-nspawn {self.nspawn.pid} still there 15 s after SIGTERM, killing it",
                      flush=True)
                self.nspawn.kill()
                self.nspawn.wait(10)
        if self.init:
            # A killed systemd-nspawn can leave its init behind, with the KSM directory bound in.
            try:
                if os.readlink(f"/proc/{self.init}/ns/pid") != os.readlink("/proc/self/ns/pid"):
                    os.kill(self.init, signal.SIGKILL)
                    wait_for(lambda: not os.path.exists(f"/proc/{self.init}"), 10)
            except OSError:
                pass
        self.init = None

    def __exit__(self, *exc):
        self.power_off()
        left = mounts_under(self.dir)
        assert not left, f"still mounted under {self.dir}: {left}"
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.pkgs, ignore_errors=True)
        if os.path.exists(self.log_path):
            os.unlink(self.log_path)
        roots = os.path.dirname(self.dir)
        if os.path.isdir(roots) and not os.listdir(roots):
            os.rmdir(roots)
        return False


def host_knob(name):
    return read(os.path.join(REAL_KSM, name)).strip()


def expected_sleep(msec):
    """sleep_millisecs for KSM_SLEEP_MSEC=msec on this host (the container sees the host's MemTotal)."""
    total = int(read("/proc/meminfo").split("MemTotal:", 1)[1].split()[0])
    return max(10, msec * 16 * 1024 * 1024 // total)


def elapsed(start):
    return f"{time.monotonic() - start:.1f} s"
