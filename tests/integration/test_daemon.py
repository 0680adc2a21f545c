# SPDX-License-Identifier: GPL-2.0-or-later
"""The real ksmtuned binary against temporary KSM and /proc trees: signals, reloads, failures, exits."""

import os
import re
import shutil
import signal
import subprocess
import tempfile

from ksmtest import (KSMTUNED, Daemon, ksm_values, make_ksm_dir, make_proc, meminfo_text, read, replace, wait_for, write)

GIB = 1024 * 1024  # kB
TOTAL = 16 * GIB   # sleep 10, thres 3355443 with the defaults
THRES = 3355443
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# A failure bound only: a passing test never waits for it, a slow machine (ASan, load) must not hit it.
DEADLINE = 60


class Env:
    """A temporary KSM directory, /proc tree and configuration for one daemon."""

    def __init__(self, conf="", free=10 * GIB, procs=(), ksm=None):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-test-")
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), **(ksm or {"run": 1}))
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(TOTAL, free), procs)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        self.set_conf(conf)

    def set_conf(self, text):
        """The configuration file: text, then no guest events (this host's libvirtd and KVM guests, which
        other tests start and stop, would cause adjustments of their own). Last, so line numbers hold."""
        write(self.conf, text + "\nKSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n")

    def meminfo(self, free=None, text=None):
        replace(os.path.join(self.proc, "meminfo"), text if text is not None else meminfo_text(TOTAL, free))

    def args(self, *extra):
        return [KSMTUNED, "--config", self.conf, "--ksm-dir", self.ksm, "--proc", self.proc, *extra]

    def start(self, *extra):
        return Daemon(self.args("--debug", *extra))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def adjustments(d):
    return [int(n) for n in re.findall(r"adjustment #(\d+)", d.output())]


def wait_adjustment(d, n, timeout=DEADLINE):
    assert wait_for(lambda: len(adjustments(d)) >= n, timeout), f"no adjustment #{n}:\n{d.output()}"


def test_startup_adjusts_and_stops_ksm():
    e = Env()
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            assert "adjustment #1 (start-up)" in d.output(), d.output()
            assert ksm_values(e.ksm)["run"] == "0"
            assert "-> stop" in d.output()
            assert "Stopped KSM" in d.output()
            assert d.stop() == 0
    finally:
        e.cleanup()


def test_sigusr1_boosts_then_decays():
    e = Env()
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            e.meminfo(free=THRES - 1)
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 2)
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "300", "sleep_millisecs": "10"}
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 3)
            assert ksm_values(e.ksm)["pages_to_scan"] == "600"
            e.meminfo(free=THRES)  # not above the threshold: KSM stays on and decays
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 4)
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "550", "sleep_millisecs": "10"}
            assert "adjustment #4 (SIGUSR1)" in d.output()
    finally:
        e.cleanup()


def test_guests_counted():
    # Guests of 14 GiB plus the 3.2 GiB threshold exceed 16 GiB: KSM runs though free memory is high.
    procs = [(4242, "qemu-system-x86", 10 * GIB, ["qemu-system-x86_64"]),
             (4243, "kvm", 4 * GIB, ["kvm"]),
             (4244, "qemu-img", 4 * GIB, ["qemu-img"])]
    e = Env(procs=procs)
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            out = d.output()
            assert f"committed {14 * GIB} (2 guests)" in out, out
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "64", "sleep_millisecs": "10"}
    finally:
        e.cleanup()


def test_reload_good_and_bad():
    e = Env(conf="KSM_NPAGES_BOOST=300\n", free=THRES - 1)
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            assert ksm_values(e.ksm)["pages_to_scan"] == "300"
            e.set_conf("# tuned\nKSM_NPAGES_BOOST=\"200\"\n")
            d.signal(signal.SIGHUP)
            wait_adjustment(d, 2)
            assert "adjustment #2 (reload)" in d.output()
            assert ksm_values(e.ksm)["pages_to_scan"] == "500"
            e.set_conf("KSM_NPAGES_BOOST=1000\n\nKSM_NPAGES_MAX=12abc\n")
            d.signal(signal.SIGHUP)
            wait_adjustment(d, 3)
            out = d.output()
            assert d.alive()
            assert re.search(re.escape(e.conf) + r":3: .*KSM_NPAGES_MAX.*12abc", out), out
            assert "keeping the running configuration" in out
            # The running configuration is untouched: boost stays 200, not the broken file's 1000.
            assert ksm_values(e.ksm)["pages_to_scan"] == "700"
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 4)
            assert ksm_values(e.ksm)["pages_to_scan"] == "900"
    finally:
        e.cleanup()


def test_sigterm_leaves_ksm():
    e = Env(free=THRES - 1)
    try:
        d = e.start()
        wait_adjustment(d, 1)
        before = ksm_values(e.ksm)
        assert d.stop(signal.SIGTERM) == 0
        assert ksm_values(e.ksm) == before == {"run": "1", "pages_to_scan": "300", "sleep_millisecs": "10"}
        d = e.start()
        wait_adjustment(d, 1)
        assert d.stop(signal.SIGINT) == 0
    finally:
        e.cleanup()


def test_once_and_dry_run():
    e = Env(free=THRES - 1)
    try:
        r = subprocess.run(e.args("--once", "--dry-run", "--debug"), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "pages_to_scan 300" in r.stderr and "not written" in r.stderr, r.stderr
        assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "100", "sleep_millisecs": "20"}
        r = subprocess.run(e.args("--once"), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "300", "sleep_millisecs": "10"}
    finally:
        e.cleanup()


def test_failed_write_logged_once_and_retried():
    e = Env(free=THRES - 1)
    knob = os.path.join(e.ksm, "pages_to_scan")
    try:
        os.unlink(knob)
        os.mkdir(knob)  # writing it fails with EISDIR, as a refused sysfs write would fail
        with e.start() as d:
            wait_adjustment(d, 1)
            for n in (2, 3, 4):
                d.signal(signal.SIGUSR1)
                wait_adjustment(d, n)
            out = d.output()
            assert out.count("Failed to write") == 1, out
            assert f"{knob}: Is a directory" in out, out
            assert ksm_values(e.ksm, ("run", "sleep_millisecs")) == {"run": "1", "sleep_millisecs": "10"}
            os.rmdir(knob)
            write(knob, "100\n")
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 5)
            assert "works again" in d.output()
            assert read(knob).strip() == "1250"  # npages kept growing: 300 × 5 capped at MAX
            assert d.alive()
    finally:
        e.cleanup()


def test_meminfo_unreadable_for_a_while():
    e = Env()
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            e.meminfo(text="MemTotal: lots\n")
            for _ in range(3):
                d.signal(signal.SIGUSR1)
            assert wait_for(lambda: "meminfo" in d.output() and "Failed" in d.output(), DEADLINE), d.output()
            d.signal(signal.SIGUSR1)
            e.meminfo(free=THRES - 1)
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, 2)
            out = d.output()
            assert out.count("Failed to read") == 1, out
            assert "reads again" in out
            assert d.alive()
    finally:
        e.cleanup()


def test_interval_timer():
    e = Env(conf="KSM_MONITOR_INTERVAL=1\n")
    try:
        with e.start() as d:
            wait_adjustment(d, 3)
            assert "(interval)" in d.output()
    finally:
        e.cleanup()


def test_signal_burst_coalesces():
    e = Env()
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            # A burst that arrives while the daemon cannot run (stopped, as on a busy machine): one adjustment.
            os.kill(d.pid, signal.SIGSTOP)
            try:
                for _ in range(2000):
                    os.kill(d.pid, signal.SIGUSR1)
            finally:
                os.kill(d.pid, signal.SIGCONT)
            wait_adjustment(d, 2)
            # Barrier: a request sent after the burst's adjustment, seen by its boost, is the next adjustment.
            e.meminfo(free=THRES - 1)
            d.signal(signal.SIGUSR1)
            assert wait_for(lambda: "-> start" in d.output(), DEADLINE), d.output()
            lines = re.findall(r"^.*adjustment #\d+ .*$", d.output(), re.M)
            assert len(lines) == 3 and "-> stop" in lines[1] and "-> start" in lines[2], lines
            # A burst while the daemon runs: how many adjustments it yields depends on how the scheduler
            # interleaves sender and daemon; what is certain is that the daemon survives it and still answers.
            for _ in range(2000):
                os.kill(d.pid, signal.SIGUSR1)
            e.meminfo(free=10 * GIB)
            d.signal(signal.SIGUSR1)  # sent after the burst: an adjustment after it sees the stop
            assert wait_for(lambda: "-> stop" in re.findall(r"^.*adjustment #\d+ .*$", d.output(), re.M)[-1],
                            DEADLINE), d.output()
            assert d.alive()
    finally:
        e.cleanup()


def test_logfile_and_reopen():
    e = Env()
    log = os.path.join(e.dir, "ksmtuned.log")
    e.set_conf(f"DEBUG=1\nLOGFILE={log}\n")
    try:
        with Daemon(e.args()) as d:
            assert wait_for(lambda: os.path.exists(log) and "adjustment #1" in read(log), DEADLINE), d.output()
            os.rename(log, log + ".1")
            d.signal(signal.SIGHUP)
            assert wait_for(lambda: os.path.exists(log) and "adjustment #2 (reload)" in read(log), DEADLINE), \
                d.output()
            assert re.match(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}: adjustment #2", read(log)), read(log)
    finally:
        e.cleanup()


def test_logfile_names_directory():
    """LOGFILE=/var/log/ksmtuned, the original's documented file, is the unit's logs directory now."""
    e = Env()
    logdir = os.path.join(e.dir, "logs")
    os.mkdir(logdir)
    log = os.path.join(logdir, "ksmtuned.log")
    old = "Sun Nov 29 10:00:00 UTC 2026: committed 0 free 1000\n"
    write(log, old)
    write(e.conf, f"DEBUG=1\nLOGFILE={logdir}\n")
    said = f"LOGFILE {logdir} is a directory: appending the debug lines to {log}"
    try:
        with Daemon(e.args()) as d:
            assert wait_for(lambda: "adjustment #1" in read(log)), d.output()
            assert read(log).startswith(old), read(log)
            assert said in d.output(), d.output()
            # Reopened at a reload, after a rotation: a new file, mode 0640, and nothing said again.
            os.rename(log, log + ".1")
            d.signal(signal.SIGHUP)
            assert wait_for(lambda: os.path.exists(log) and "adjustment #2 (reload)" in read(log)), d.output()
            assert os.stat(log).st_mode & 0o7777 == 0o640 & ~current_umask(), oct(os.stat(log).st_mode)
            assert d.output().count(said) == 1, d.output()
            assert "Failed to open LOGFILE" not in d.output(), d.output()
    finally:
        e.cleanup()


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fatal_start_errors():
    e = Env(conf="KSM_NPAGES_MIN=2000\nKSM_THRES_COEF=$(reboot)\n")
    try:
        r = subprocess.run(e.args(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert f"{e.conf}:2:" in r.stderr and "KSM_THRES_COEF" in r.stderr and "$(reboot)" in r.stderr, r.stderr
        write(e.conf, "")
        r = subprocess.run([KSMTUNED, "--config", e.conf, "--ksm-dir", e.dir + "/none", "--proc", e.proc],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "no KSM" in r.stderr, r.stderr
        r = subprocess.run([KSMTUNED, "--bogus"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "--help" in r.stderr
        r = subprocess.run([KSMTUNED, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "SIGUSR1" in r.stdout and "--config" in r.stdout
        r = subprocess.run([KSMTUNED, "--version"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.startswith("ksmtuned ")
    finally:
        e.cleanup()


def test_not_root():
    e = Env()
    if os.geteuid() != 0:
        who = []  # a developer's own files: make run read-only as the kernel's is to non-root users
        os.chmod(os.path.join(e.ksm, "run"), 0o444)
    else:
        who = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        os.chmod(e.dir, 0o755)
        r = subprocess.run(who + e.args(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert "must run as root" in r.stderr and e.ksm + "/run" in r.stderr, r.stderr
    finally:
        e.cleanup()
