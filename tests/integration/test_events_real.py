# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned notices guests on real parts: a real libvirtd with real KVM guests, and bare QEMU/KVM VMs.

The interval is an hour, so only guest events can cause the adjustments these tests wait for."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ksmtest import KSMTUNED, Daemon, make_ksm_dir, need_root, wait_for, write

# A bound, not a measure: the settle delay is 2 s and the interval an hour, so an adjustment with the
# guest's reason within a minute can only come from the event. bench/reaction.py measures the delay.
DEADLINE = 60.0


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_root("real libvirtd and KVM guests")


class Tuner:
    """Our daemon on a temporary KSM directory and the real /proc, with the given extra settings."""

    def __init__(self, conf="", **ksm):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-events-")
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), run=0, **ksm)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, "KSM_MONITOR_INTERVAL=3600\n" + conf)
        self.d = Daemon([KSMTUNED, "--debug", "--config", self.conf, "--ksm-dir", self.ksm])
        assert wait_for(lambda: "adjustment #1 (start-up)" in self.d.output(), DEADLINE), self.d.output()

    def count(self):
        return len(re.findall(r"^adjustment #\d+", self.d.output(), re.M))

    def wait_adjustment(self, after, pattern, what):
        """Wait for an adjustment beyond the first `after`, whose reason matches; return the delay."""
        t0 = time.monotonic()
        ok = wait_for(lambda: re.search(r"^adjustment #(\d+) \(" + pattern, self.d.output(), re.M)
                      and self.count() > after, DEADLINE + 1)
        delay = time.monotonic() - t0
        assert ok, f"no adjustment for {what} within {DEADLINE} s:\n{self.d.output()}"
        print(f"     {what}: adjusted {delay:.2f} s after", flush=True)
        return delay

    def close(self):
        rc = self.d.stop()
        out = self.d.output()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert rc == 0, f"exit status {rc}:\n{out}"
        return out


def libvirt_mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libvirt.so" in f.read()


def test_no_libvirtd_quiet():
    """No libvirtd: the daemon runs normally, libvirt is never loaded, nothing is logged above info."""
    t = Tuner()
    try:
        # The daemon looks for libvirt's socket at start-up and then only on inotify events: one more
        # adjustment, served after everything start-up scheduled, closes the window.
        t.d.signal(signal.SIGUSR1)
        assert wait_for(lambda: t.count() >= 2, DEADLINE), t.d.output()
        assert t.d.alive()
        assert not libvirt_mapped(t.d.pid), "libvirt.so loaded without a libvirt daemon"
        out = t.d.output()
        assert "warning:" not in out and "error:" not in out, out
    finally:
        t.close()


def test_libvirt_guest_start_stop(lv):
    # Uevents off: this proves libvirt's own events, not the kernel's.
    t = Tuner("KSM_KVM_EVENTS=0\n")
    try:
        assert wait_for(lambda: "Connected to libvirt" in t.d.output(), DEADLINE), t.d.output()
        assert libvirt_mapped(t.d.pid)
        n = t.count()
        lv.create("ksmtuned-test-g1")
        t.wait_adjustment(n, r"libvirt guest ksmtuned-test-g1 started", "libvirt guest start")
        n = t.count()
        lv.destroy("ksmtuned-test-g1")
        t.wait_adjustment(n, r"libvirt guest ksmtuned-test-g1 (stopped|shut down)", "libvirt guest stop")
    finally:
        t.close()


def test_libvirtd_restart(lv):
    t = Tuner("KSM_KVM_EVENTS=0\n")
    try:
        assert wait_for(lambda: "Connected to libvirt" in t.d.output(), DEADLINE), t.d.output()
        lv.kill_libvirtd()
        assert wait_for(lambda: "Lost the connection to libvirt" in t.d.output(), DEADLINE), t.d.output()
        lv.start_libvirtd()
        assert wait_for(lambda: t.d.output().count("Connected to libvirt") >= 2, DEADLINE), t.d.output()
        assert wait_for(lambda: "(libvirt reconnected)" in t.d.output(), DEADLINE), t.d.output()
        n = t.count()
        lv.create("ksmtuned-test-g2")
        t.wait_adjustment(n, r"libvirt guest ksmtuned-test-g2 started", "libvirt guest start after a restart")
        lv.destroy("ksmtuned-test-g2")
        out = t.d.output()
        assert out.count("is not available") <= 1, out  # one line per outage, not one per attempt
        assert t.d.alive()
    finally:
        t.close()


def test_bare_kvm_vm():
    # libvirt off: only the kernel's uevents can tell.
    t = Tuner("KSM_LIBVIRT_URI=\n")
    q = None
    try:
        n = t.count()
        q = subprocess.Popen(["qemu-system-x86_64", "-enable-kvm", "-machine", "pc", "-nodefaults", "-display",
                              "none", "-S", "-m", "64"], stderr=subprocess.DEVNULL)
        t.wait_adjustment(n, rf"KVM VM of PID {q.pid} created", "bare KVM VM start")
        n = t.count()
        q.terminate()
        q.wait(60)
        t.wait_adjustment(n, rf"KVM VM of PID {q.pid} destroyed", "bare KVM VM stop")
        q = None
    finally:
        if q:
            q.kill()
            q.wait()
        t.close()


def test_adaptive_looks_closely_at_announcement():
    # KSM_POLICY=adaptive, KSM forced on, KSM's counters standing still (nothing to scan) and no process
    # counted as a guest (no growth to see): the controller holds, looking again every 2 s at most. A VM
    # announced by its uevent makes it look at once, then every 0.25 s, before the adjustment that follows
    # once events settle.
    t = Tuner("KSM_LIBVIRT_URI=\nKSM_POLICY=adaptive\nKSM_THRES_COEF=100\nKSM_GUEST_COMM=^no-guest-is-named-so$\n",
              pages_scanned=0, pages_skipped=0)
    q = None
    check = r"adaptive check: \d+ pages/s \(([^)]*)\) -> .*; next check in ([\d.]+) s"
    try:
        assert wait_for(lambda: "nothing scanned: holding" in t.d.output(), DEADLINE), t.d.output()
        n = t.count()
        q = subprocess.Popen(["qemu-system-x86_64", "-enable-kvm", "-machine", "pc", "-nodefaults", "-display",
                              "none", "-S", "-m", "64"], stderr=subprocess.DEVNULL)
        t.wait_adjustment(n, rf"KVM VM of PID {q.pid} created", "bare KVM VM start")
        out = t.d.output()
        after = out.split(f"Guest event: KVM VM of PID {q.pid} created", 1)[1]
        before_adjustment = after.split(f"(KVM VM of PID {q.pid} created", 1)[0]
        checks = re.findall(check, before_adjustment)
        assert checks, out
        assert checks[0][0] == "nothing scanned: holding" and float(checks[0][1]) <= 0.3, (checks, out)
    finally:
        if q:
            q.kill()
            q.wait()
        t.close()
