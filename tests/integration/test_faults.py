# SPDX-License-Identifier: GPL-2.0-or-later
"""Faults around a running ksmtuned: its KSM directory gone, read-only or refusing values (on the real kernel
too), /proc/meminfo broken for a while, libvirtd killed or hung, signal storms, a broken configuration at
reload, guests exiting mid-scan, no root. Each test asserts the outcome: the daemon alive, the error logged
once and naming what failed, nothing lost afterwards.

Root: private mount namespaces, setpriv, the real /sys/kernel/mm/ksm (restored with RealKsm) and a real
libvirtd. Suite 'real': not in parallel with other tests of the real KSM or libvirtd."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from ksmtest import (FAKE_GUEST, KSMTUNED, REAL_KSM, Daemon, RealKsm, asan_instrumented, ksm_values, make_ksm_dir,
                     make_proc, meminfo_text, need_root, read, skip_or_fail, wait_for, write)

GIB = 1024 * 1024  # kB
TOTAL = 16 * GIB   # sleep 10 ms, threshold 3355443 kB with the defaults
THRES = 3355443
NOBODY = 65534
# No interval, no guest events: only what a test does causes an adjustment.
QUIET = "KSM_MONITOR_INTERVAL=3600\nKSM_KVM_EVENTS=0\nKSM_LIBVIRT_URI=\n"
KNOBS = ("pages_to_scan", "sleep_millisecs", "run")


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_root("fault injection (mount namespaces, setpriv, the real KSM, libvirtd)")
    for tool in ("unshare", "nsenter", "setpriv"):
        if not shutil.which(tool):
            skip_or_fail(f"{tool} is not installed")
    if not FAKE_GUEST:
        skip_or_fail("FAKE_GUEST is not set")


class Env:
    """A temporary KSM directory, /proc tree and configuration for one daemon."""

    def __init__(self, conf="", free=10 * GIB, ksm=None):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-faults-")
        os.chmod(self.dir, 0o755)
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), **(ksm or {"run": 1}))
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(TOTAL, free))
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, QUIET + conf)

    def meminfo(self, free=None, text=None):
        write(os.path.join(self.proc, "meminfo"), text if text is not None else meminfo_text(TOTAL, free))

    def args(self, *extra, ksm=None, proc=None):
        return [KSMTUNED, "--config", self.conf, "--ksm-dir", ksm or self.ksm, "--proc", proc or self.proc, *extra]

    def start(self, *extra, wrap=(), env=None, ksm=None, proc=None):
        return Daemon([*wrap, *self.args("--debug", *extra, ksm=ksm, proc=proc)], env=env)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def adjustments(d):
    return len(re.findall(r"^adjustment #\d+", d.output(), re.M))


def wait_adjustment(d, n, timeout=60):
    assert wait_for(lambda: adjustments(d) >= n, timeout), f"no adjustment #{n}:\n{d.output()}"


def usr1(d, n):
    """SIGUSR1, and wait for the adjustment it causes, which is #n."""
    d.signal(signal.SIGUSR1)
    wait_adjustment(d, n)


def hup(d, n):
    d.signal(signal.SIGHUP)
    wait_adjustment(d, n)


def count(out, pattern):
    return len(re.findall(pattern, out, re.M))


def no_errors(out):
    bad = [line for line in out.splitlines() if line.startswith(("error:", "warning:", "==", "ERROR"))
           or "runtime error" in line or "Sanitizer" in line]
    assert not bad, "unexpected warnings or errors:\n" + "\n".join(bad[:20])


def in_mount_ns(script, *script_args):
    """A command that runs `script` (sh) in a private mount namespace, then execs the rest: the daemon keeps
    the PID Popen sees (unshare and sh exec, no fork), so signals and nsenter reach it directly."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script + ' && exec "$@"', *script_args]


def rss_kb(pid):
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- the KSM directory ----

def test_ksm_dir_missing_at_start():
    e = Env()
    try:
        missing = os.path.join(e.dir, "no-ksm-here")
        r = subprocess.run(e.args(ksm=missing), capture_output=True, text=True, timeout=10)
        assert r.returncode == 1, (r.returncode, r.stderr)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and missing in errors[0] and "does not exist" in errors[0], r.stderr
    finally:
        e.cleanup()


def test_ksm_dir_removed_while_running():
    """Every write fails (ENOENT): logged once per knob, not at every adjustment; the daemon carries on."""
    e = Env(free=THRES - 1)
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            shutil.rmtree(e.ksm)
            for n in (2, 3, 4):
                usr1(d, n)
            out = d.output()
            for k in KNOBS:
                failed = count(out, rf"^warning: Failed to write \d+ to {re.escape(e.ksm)}/{k}: No such file")
                assert failed == 1, f"{k}: logged {failed} times:\n{out}"
            assert count(out, r"^warning: Failed to write") == 3, out
            assert d.alive()
    finally:
        e.cleanup()


def test_ksm_dir_renamed_away_and_recreated():
    """The directory named by --ksm-dir is replaced (renamed away, a new one made at its path, as a remounted
    sysfs would be): the next adjustments must write the new one. The daemon holds a directory fd opened at
    start, so it keeps writing the old directory wherever it went."""
    e = Env(free=THRES - 1)
    away = e.ksm + ".away"
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            os.rename(e.ksm, away)
            usr1(d, 2)
            make_ksm_dir(e.ksm, run=0)
            usr1(d, 3)
            usr1(d, 4)
            assert d.alive()
            got, old = ksm_values(e.ksm), ksm_values(away)
            assert got == {"run": "1", "pages_to_scan": "1200", "sleep_millisecs": "10"}, (
                f"the directory at {e.ksm} was never written: it holds {got}, while the one renamed to "
                f"{away} got {old}:\n{d.output()}")
    finally:
        e.cleanup()


def test_ksm_dir_read_only_mount():
    """A read-only bind mount over the KSM directory: EROFS at start-up is fatal and clear; while running, each
    knob's failure is logged once, and writing works again once it is read-write."""
    e = Env(free=THRES - 1)
    try:
        r = subprocess.run(in_mount_ns('mount --bind -o ro "$0" "$0"', e.ksm) + e.args(), capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"Cannot write {e.ksm}/run: Read-only file system" in r.stderr, r.stderr

        # The daemon opens the directory on a bind mount of its own, which is then made read-only under it.
        with e.start(wrap=in_mount_ns('mount --bind "$0" "$0"', e.ksm)) as d:
            wait_adjustment(d, 1)
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "300", "sleep_millisecs": "10"}
            subprocess.run(["nsenter", "-t", str(d.pid), "-m", "mount", "-o", "remount,bind,ro", e.ksm], check=True)
            for n in (2, 3, 4):
                usr1(d, n)
            out = d.output()
            for k in ("pages_to_scan",):  # run and sleep_millisecs already hold what is wanted: not written
                assert count(out, rf"^warning: Failed to write \d+ to {re.escape(e.ksm)}/{k}: Read-only") == 1, out
            assert count(out, r"^warning: Failed to write") == 1, out
            assert ksm_values(e.ksm)["pages_to_scan"] == "300"
            subprocess.run(["nsenter", "-t", str(d.pid), "-m", "mount", "-o", "remount,bind,rw", e.ksm], check=True)
            usr1(d, 5)
            assert f"Writing {e.ksm}/pages_to_scan works again" in d.output(), d.output()
            assert ksm_values(e.ksm)["pages_to_scan"] == "1250"  # 300 x 5, capped: no adjustment was lost
            assert d.alive()
    finally:
        e.cleanup()


def test_failed_write_not_reported_as_done():
    """When the kernel refuses pages_to_scan, the info line must not claim KSM was tuned to that value."""
    e = Env(free=THRES - 1)
    knob = os.path.join(e.ksm, "pages_to_scan")
    try:
        os.unlink(knob)
        os.mkdir(knob)  # EISDIR, as test_daemon does
        with e.start() as d:
            wait_adjustment(d, 1)
            usr1(d, 2)
            out = d.output()
            claims = re.findall(r"^(?:Tuned|Started) KSM: pages_to_scan .*", out, re.M)
            assert not claims, "pages_to_scan was never written, yet the log says:\n" + "\n".join(claims)
    finally:
        e.cleanup()


def test_real_kernel_advisor_refuses_pages_to_scan():
    """The real kernel refuses pages_to_scan (EINVAL) while its advisor is in scan-time mode: the daemon must not
    fight it (no refused write, no warning), still set run and sleep_millisecs, and set pages_to_scan again as
    soon as the advisor is off."""
    advisor = os.path.join(REAL_KSM, "advisor_mode")
    if not os.path.exists(advisor):
        raise AssertionError(f"{advisor} is missing: this test needs a kernel >= 6.8")
    e = Env(free=THRES - 1)
    try:
        with RealKsm():
            try:
                write(advisor, "scan-time\n")
                with e.start(ksm=REAL_KSM) as d:
                    wait_adjustment(d, 1)
                    usr1(d, 2)
                    usr1(d, 3)
                    out = d.output()
                    assert count(out, r"^warning: Failed to write") == 0, out
                    assert ksm_values(REAL_KSM, ("run", "sleep_millisecs")) == {"run": "1", "sleep_millisecs": "10"}
                    write(advisor, "none\n")
                    usr1(d, 4)
                    out = d.output()
                    assert count(out, r"^warning: Failed to write") == 0, out
                    assert ksm_values(REAL_KSM)["pages_to_scan"] == "1200", out  # 300 x 4: the boosts went on
                    assert d.alive()
            finally:
                write(advisor, "none\n")  # before RealKsm restores pages_to_scan, which the advisor would refuse
    finally:
        e.cleanup()


def test_real_kernel_einval():
    """The real kernel's EINVAL on the daemon's own write path: the daemon's `run` links to the real
    max_page_sharing, which refuses any value below 2, so the daemon's 0 or 1 can change nothing. Logged once,
    the other knobs written, and writing works again once `run` is a good knob again."""
    mps = os.path.join(REAL_KSM, "max_page_sharing")
    e = Env(free=THRES - 1)
    run = os.path.join(e.ksm, "run")
    try:
        saved = read(mps).strip()
        os.unlink(run)
        os.symlink(mps, run)
        with e.start() as d:
            wait_adjustment(d, 1)
            usr1(d, 2)
            usr1(d, 3)
            out = d.output()
            refused = rf"^warning: Failed to write 1 to {re.escape(e.ksm)}/run: Invalid argument"
            assert count(out, refused) == 1, out
            assert count(out, r"^warning: Failed to write") == 1, out
            assert ksm_values(e.ksm, ("pages_to_scan", "sleep_millisecs")) == {"pages_to_scan": "900",
                                                                              "sleep_millisecs": "10"}
            assert read(mps).strip() == saved
            os.unlink(run)
            write(run, "0\n")
            usr1(d, 4)
            assert f"Writing {e.ksm}/run works again" in d.output(), d.output()
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "1200", "sleep_millisecs": "10"}
            assert d.alive()
    finally:
        e.cleanup()


def test_real_kernel_ebusy():
    """The real kernel's EBUSY: none of the three knobs ksmtuned writes ever answers it, but max_page_sharing
    does while pages are merged. A temporary KSM directory whose pages_to_scan links to it makes the
    daemon's own write path meet it: logged once, the value left alone, the daemon carries on."""
    mps = os.path.join(REAL_KSM, "max_page_sharing")
    e = Env(free=THRES - 1)
    guest = None
    try:
        with RealKsm():
            saved_mps = read(mps).strip()
            try:
                write(os.path.join(REAL_KSM, "advisor_mode"), "none\n")
                guest = subprocess.Popen([FAKE_GUEST, "64", "--mergeable", "--fill", "same"], stdout=subprocess.PIPE,
                                         text=True)
                assert guest.stdout.readline().strip() == "ready"
                write(os.path.join(REAL_KSM, "pages_to_scan"), "1000\n")
                write(os.path.join(REAL_KSM, "sleep_millisecs"), "10\n")
                write(os.path.join(REAL_KSM, "run"), "1\n")
                assert wait_for(lambda: int(read(os.path.join(REAL_KSM, "pages_shared"))) > 0, 30), "nothing merged"
                os.unlink(os.path.join(e.ksm, "pages_to_scan"))
                os.symlink(mps, os.path.join(e.ksm, "pages_to_scan"))
                with e.start() as d:
                    wait_adjustment(d, 1)
                    usr1(d, 2)
                    usr1(d, 3)
                    out = d.output()
                    busy = (rf"^warning: Failed to write \d+ to {re.escape(e.ksm)}/pages_to_scan: "
                            r"Device or resource busy")
                    assert count(out, busy) == 1, out
                    assert count(out, r"^warning: Failed to write") == 1, out
                    assert read(mps).strip() == saved_mps
                    assert ksm_values(e.ksm, ("run", "sleep_millisecs")) == {"run": "1", "sleep_millisecs": "10"}
                    assert d.alive()
            finally:
                if guest:
                    guest.terminate()
                    guest.wait(10)
                if read(mps).strip() != saved_mps:  # only possible if the merged pages went away mid-test
                    write(os.path.join(REAL_KSM, "run"), "2\n")
                    wait_for(lambda: int(read(os.path.join(REAL_KSM, "pages_shared"))) == 0, 30)
                    write(mps, saved_mps + "\n")
    finally:
        e.cleanup()


# ---- /proc/meminfo ----

def test_meminfo_broken_for_one_adjustment():
    """A directory (EISDIR), a malformed MemTotal, missing (ENOENT): each outage skips its adjustments,
    is logged once, and the next adjustment works and continues from where it was."""
    e = Env(free=THRES - 1)
    mi = os.path.join(e.proc, "meminfo")
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            n = 1
            outages = [("Is a directory", lambda: (os.unlink(mi), os.mkdir(mi)), lambda: os.rmdir(mi)),
                       ("MemTotal is not a positive number of kB", lambda: e.meminfo(text="MemTotal: lots\nMemFree: 1 kB\n"),
                        None),
                       ("No such file", lambda: os.unlink(mi), None)]
            for i, (why, breakit, repair) in enumerate(outages, 1):
                breakit()
                for _ in range(3):  # three adjustments fail; one line says so
                    d.signal_and_settle(signal.SIGUSR1)
                assert wait_for(lambda: count(d.output(), r"^warning: Failed to read .*meminfo") == i), d.output()
                if repair:
                    repair()
                e.meminfo(free=THRES - 1)
                n += 1
                usr1(d, n)
                out = d.output()
                assert count(out, r"^warning: Failed to read .*meminfo") == i, out
                assert re.search(rf"^warning: Failed to read {re.escape(e.proc)}/meminfo: {why}", out, re.M), out
                assert count(out, r"meminfo reads again") == i, out
                assert adjustments(d) == n, out  # the failed ones left no decision behind
            assert ksm_values(e.ksm)["pages_to_scan"] == "1200"  # 300 x 4: the boosts went on where they were
            assert d.alive()
    finally:
        e.cleanup()


# ---- libvirt ----

def churn_guests(lv, stop, names, refused=None):
    """Start and destroy guests until told to stop; failures (libvirtd gone) are expected, and counted in
    `refused` (a list, one item per refused start)."""
    xml = os.path.join(lv.dir, "churn.xml")
    i = 0
    while not stop.is_set():
        name = f"ksmtuned-test-churn{i % 2}"
        write(xml, f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                   "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                   "<emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/></devices></domain>")
        if lv.virsh("create", xml, timeout=60).returncode == 0:
            names.append(name)
            lv.virsh("destroy", name, timeout=60)
        else:
            if refused is not None:
                refused.append(name)
            time.sleep(0.2)  # a retry's pace, not a wait for anything
        i += 1


def test_libvirtd_killed_while_events_flow(lv):
    e = Env(conf="KSM_LIBVIRT_URI=qemu:///system\nKSM_EVENT_SETTLE_MSEC=100\n")
    stop = threading.Event()
    started, refused = [], []
    t = threading.Thread(target=churn_guests, args=(lv, stop, started, refused))
    try:
        with e.start() as d:
            assert wait_for(lambda: "Connected to libvirt at qemu:///system" in d.output(), 30), d.output()
            t.start()
            assert wait_for(lambda: "(libvirt guest ksmtuned-test-churn" in d.output(), 30), d.output()
            lv.kill_libvirtd()
            assert wait_for(lambda: "Lost the connection to libvirt" in d.output(), 30), d.output()
            # Guests keep being asked for while nobody answers: two refused starts, then the daemon still runs.
            mark = len(refused)
            assert wait_for(lambda: len(refused) >= mark + 2, 60), "the churn never met the dead libvirtd"
            assert d.alive()
            n = adjustments(d)
            usr1(d, n + 1)  # responsive meanwhile
            lv.start_libvirtd()
            assert wait_for(lambda: d.output().count("Connected to libvirt at qemu:///system") >= 2, 60), d.output()
            assert wait_for(lambda: "(libvirt reconnected)" in d.output(), 10), d.output()
            mark = len(d.output())
            assert wait_for(lambda: "(libvirt guest ksmtuned-test-churn" in d.output()[mark:], 30), d.output()
            stop.set()
            t.join(120)
            out = d.output()
            assert d.alive()
            assert count(out, r"is not available") <= 1, out  # one line per outage
            no_errors(out)
            assert d.stop() == 0, out
    finally:
        stop.set()
        if t.is_alive():
            t.join(120)
        e.cleanup()


def test_libvirt_turned_off_then_libvirtd_dies(lv):
    """A reload that turns libvirt off must close the connection, so that libvirtd dying later reaches no
    callback of ours: the watch it belonged to is gone."""
    e = Env(conf="KSM_LIBVIRT_URI=qemu:///system\n")
    try:
        with e.start() as d:
            assert wait_for(lambda: "Connected to libvirt at qemu:///system" in d.output(), 30), d.output()
            fds_connected = fd_count(d.pid)
            write(e.conf, QUIET)  # KSM_LIBVIRT_URI= : off
            hup(d, 2)
            d.signal_and_settle(signal.SIGUSR1)  # adjustment #3: the reload's closing has run by now
            fds_off = fd_count(d.pid)
            lv.kill_libvirtd()  # returns once libvirtd's process is gone, its sockets closed
            # A hang-up on a socket still watched would be dispatched before this adjustment, whose source
            # runs at idle priority, after every event that is ready.
            usr1(d, 4)
            out = d.output()
            assert d.alive(), f"died when libvirtd did, after libvirt was turned off:\n{out}"
            assert "Lost the connection" not in out, f"a connection closed by the reload was still watched:\n{out}"
            assert fds_off < fds_connected, f"the connection is still open after the reload: fds {fds_connected} -> " \
                                            f"{fds_off}:\n{out}"
            usr1(d, 5)
            assert d.stop() == 0, d.output()
    finally:
        if not any(n == "libvirtd" for n, _ in lv.started):
            lv.start_libvirtd()
        e.cleanup()


def dead_socket_case(listening):
    """/run/libvirt (private to the daemon) holds a socket nobody answers on: refused (bound, then closed) or
    hung (listening, never accepting). The daemon stays quiet and its loop never blocks."""
    e = Env(conf="KSM_LIBVIRT_URI=qemu:///system\n")
    run_dir = tempfile.mkdtemp(prefix="ksmtuned-run-libvirt-")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn = None
    try:
        sock.bind(os.path.join(run_dir, "libvirt-sock-ro"))
        if listening:
            sock.listen(16)
        else:
            sock.close()
        # A tmpfs over /run hides any real libvirt (virtqemud-sock-ro too) from this daemon only.
        wrap = in_mount_ns('mount -t tmpfs tmpfs /run && mkdir /run/libvirt && mount --bind "$0" /run/libvirt',
                           run_dir)
        with e.start(wrap=wrap) as d:
            wait_adjustment(d, 1)
            if listening:
                # The daemon's connection, accepted and never answered: its probe now waits for a reply.
                sock.settimeout(60)
                conn, _ = sock.accept()
                for _ in range(3):  # SIGUSR1 is served while the probe waits (a blocked loop never would)
                    usr1(d, adjustments(d) + 1)
            else:
                assert wait_for(lambda: "is not available" in d.output(), 60), d.output()
                # Between back-off retries, SIGUSR1 is served every time.
                for _ in range(2):
                    retries = count(d.output(), r"next attempt")
                    usr1(d, adjustments(d) + 1)
                    assert wait_for(lambda: count(d.output(), r"next attempt") > retries, 60), d.output()
                usr1(d, adjustments(d) + 1)
            out = d.output()
            assert d.alive()
            assert "Connected to libvirt" not in out, out
            if listening:
                assert "is not available" not in out, out  # still waiting for the answer: nothing to say yet
            else:
                assert count(out, r"^libvirt at qemu:///system is not available") == 1, out
                assert count(out, r"^libvirt at qemu:///system: .*next attempt") >= 1, out  # retries, at debug
            no_errors(out)
            assert d.stop() == 0, out
    finally:
        if conn:
            conn.close()
        sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        e.cleanup()


def test_libvirt_socket_refused():
    dead_socket_case(listening=False)


def test_libvirt_socket_hung():
    dead_socket_case(listening=True)


# ---- signals ----

def test_signal_storm():
    """10,000 SIGUSR1 and 10,000 SIGHUP: they coalesce, nothing crashes or grows, and it still answers."""
    e = Env(free=THRES - 1)
    # ASan keeps freed memory in quarantine, which would look like growth; no effect on other builds.
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=1:detect_leaks=1")

    def storm(n):
        for _ in range(n):
            os.kill(d.pid, signal.SIGUSR1)
            os.kill(d.pid, signal.SIGHUP)

    def settle():
        # Every signal read and all it caused done: idle in epoll_wait, none pending.
        assert wait_for(d.settled, 120), f"never idle after the storm:\n{d.output()[-3000:]}"
        return adjustments(d)

    try:
        with e.start(env=env) as d:
            wait_adjustment(d, 1)
            storm(1000)
            before = settle()
            rss0, fds0 = rss_kb(d.pid), fd_count(d.pid)
            t0 = time.monotonic()
            storm(10000)
            sent = time.monotonic() - t0
            after = settle()
            rss1, fds1 = rss_kb(d.pid), fd_count(d.pid)
            n = after - before
            reloads = count(d.output(), r"^Reloading configuration")
            print(f"     20000 signals in {sent:.2f} s: {n} adjustments, {reloads} reloads in all; "
                  f"RSS {rss0} -> {rss1} kB, fds {fds0} -> {fds1}", flush=True)
            assert d.alive()
            # How many signals one adjustment absorbs depends on scheduling: never more adjustments than asked.
            assert 1 <= n <= 20000, n
            assert fds1 == fds0, (fds0, fds1)
            # Memory that stays: the plain build's RSS. ASan's allocator keeps freed chunks in its own caches
            # and quarantine, so its RSS says nothing of leaks; LeakSanitizer checks those at exit there.
            if not asan_instrumented(KSMTUNED):
                assert rss1 - rss0 < 2048, (rss0, rss1)
            # Coalescing, whatever the scheduler does: signals that arrive while the daemon cannot run are one
            # pending SIGUSR1 and one pending SIGHUP when it can, and cause at most two adjustments.
            d.signal(signal.SIGSTOP)
            assert wait_for(lambda: read(f"/proc/{d.pid}/stat").rsplit(")", 1)[1].split()[0] == "T", 60)
            storm(1000)
            d.signal(signal.SIGCONT)
            burst = settle() - after
            assert 1 <= burst <= 2, f"2000 signals while stopped caused {burst} adjustments:\n{d.output()[-3000:]}"
            usr1(d, after + burst + 1)
            no_errors(d.output())
            assert d.stop() == 0, d.output()[-3000:]
    finally:
        e.cleanup()


# ---- the configuration at reload ----

def test_config_broken_at_reload():
    """A directory, more than 1 MiB, a drop-in directory that is a file: the running configuration stays and
    the error names the file. Deleted: the defaults apply, as ksmtuned.conf(5) documents (both the file and
    its drop-ins may be missing, at start-up and at reload)."""
    e = Env(conf="KSM_NPAGES_BOOST=200\n", free=THRES - 1)
    good = read(e.conf)
    dropins = e.conf + ".d"
    try:
        with e.start() as d:
            wait_adjustment(d, 1)
            assert ksm_values(e.ksm)["pages_to_scan"] == "200"
            n, pages = 1, 200
            cases = [("is a directory", e.conf, lambda: (os.unlink(e.conf), os.mkdir(e.conf)),
                      lambda: (os.rmdir(e.conf), write(e.conf, good))),
                     ("too large", e.conf, lambda: write(e.conf, good + ("#" * 99 + "\n") * 11000), None),
                     ("cannot open drop-in directory", dropins, lambda: write(dropins, "KSM_NPAGES_BOOST=1\n"),
                      lambda: os.unlink(dropins))]
            for i, (why, path, breakit, repair) in enumerate(cases, 1):
                breakit()
                n += 1
                hup(d, n)
                pages += 200
                out = d.output()
                assert re.search(rf"^error: {re.escape(path)}: {why}", out, re.M), out
                assert count(out, r"keeping the running configuration") == i, out
                assert ksm_values(e.ksm)["pages_to_scan"] == str(pages), out  # boost 200 still, not 300
                if repair:
                    repair()
                write(e.conf, good)
            write(os.path.join(dropins, "quiet.conf"), QUIET)  # still no interval or guest events
            os.unlink(e.conf)
            hup(d, n + 1)
            out = d.output()
            assert count(out, r"keeping the running configuration") == len(cases), out
            assert ksm_values(e.ksm)["pages_to_scan"] == str(pages + 300), out  # the default boost
            assert d.alive()
    finally:
        e.cleanup()


def test_config_unreadable_at_reload():
    """As root, chmod does not stop a read: the daemon runs as nobody, on a KSM directory nobody may write."""
    e = Env(conf="KSM_NPAGES_BOOST=200\n", free=THRES - 1)
    try:
        for k in os.listdir(e.ksm):
            os.chown(os.path.join(e.ksm, k), NOBODY, NOBODY)
        os.chown(e.ksm, NOBODY, NOBODY)
        with e.start(wrap=["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]) as d:
            wait_adjustment(d, 1)
            assert ksm_values(e.ksm)["pages_to_scan"] == "200", d.output()
            os.chmod(e.conf, 0o600)
            hup(d, 2)
            out = d.output()
            assert re.search(rf"^error: {re.escape(e.conf)}: cannot open: Permission denied", out, re.M), out
            assert "keeping the running configuration" in out, out
            assert ksm_values(e.ksm)["pages_to_scan"] == "400", out
            os.chmod(e.conf, 0o644)
            hup(d, 3)
            assert ksm_values(e.ksm)["pages_to_scan"] == "600"
            assert count(d.output(), r"keeping the running configuration") == 1
            assert d.alive()
    finally:
        e.cleanup()


# ---- guests ----

def test_guests_exiting_during_scan():
    """Short-lived fake guests on the real /proc while adjustments run back to back: a process that vanishes
    between readdir() and reading its files is no error."""
    e = Env()
    guest_env = dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86")
    stop = threading.Event()

    def pester(pid):
        while not stop.is_set():
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.002)

    try:
        with e.start(proc="/proc") as d:
            wait_adjustment(d, 1)
            t = threading.Thread(target=pester, args=(d.pid,))
            t.start()
            spawned = 0
            try:
                # Enough churn for adjustments to meet vanishing guests, however fast this machine is.
                end = time.monotonic() + 120
                while (spawned < 256 or adjustments(d) < 40) and time.monotonic() < end:
                    batch = [subprocess.Popen([FAKE_GUEST, "1"], env=guest_env, stdout=subprocess.DEVNULL)
                             for _ in range(8)]
                    spawned += len(batch)
                    time.sleep(0.01)  # the churn's pace: some die before, some after their first read
                    for i, p in enumerate(batch):
                        p.send_signal(signal.SIGKILL if i % 2 else signal.SIGTERM)
                    for p in batch:
                        p.wait(10)
            finally:
                stop.set()
                t.join()
            out = d.output()
            n = adjustments(d)
            seen = [int(g) for g in re.findall(r"\((\d+) guests\)", out)]
            print(f"     {spawned} fake guests, {n} adjustments, {sum(1 for g in seen if g)} of them saw some",
                  flush=True)
            assert d.alive()
            assert n >= 40, n
            assert any(seen), "no adjustment saw a fake guest: the race was not exercised"
            no_errors(out)
            assert d.stop() == 0, out[-3000:]
    finally:
        e.cleanup()


# ---- privileges ----

def test_not_root_real_ksm():
    """Not root, on the real /sys/kernel/mm/ksm (the default --ksm-dir): a clear error, exit 1, nothing written."""
    e = Env()
    try:
        before = ksm_values(REAL_KSM)
        r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", KSMTUNED,
                            "--config", e.conf, "--proc", e.proc], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1, (r.returncode, r.stderr)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, r.stderr
        assert f"Cannot write {REAL_KSM}/run: Permission denied" in errors[0], r.stderr
        assert "must run as root" in errors[0], r.stderr
        assert ksm_values(REAL_KSM) == before
    finally:
        e.cleanup()
