# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned on the real kernel: real /sys/kernel/mm/ksm, real /proc, a real guest stand-in process."""

import os
import re
import signal
import subprocess
import tempfile

import pytest

from ksmtest import (FAKE_GUEST, KSMTUNED, REAL_KSM, Daemon, RealKsm, ksm_values, need_real_ksm, wait_for, write)


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_real_ksm()

# A failure bound only: a passing test never waits for it, a slow machine (ASan, load) must not hit it.
DEADLINE = 60


def conf(text):
    f = tempfile.NamedTemporaryFile("w", prefix="ksmtuned-real-", suffix=".conf", delete=False)
    f.write(text)
    f.close()
    return f.name


def meminfo():
    with open("/proc/meminfo") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)}


def start_guest(mib, comm="qemu-system-x86"):
    p = subprocess.Popen(["qemu-system-x86_64", str(mib), "-enable-kvm"], executable=FAKE_GUEST,
                         stdout=subprocess.PIPE, env=dict(os.environ, FAKE_GUEST_COMM=comm))
    assert p.stdout.readline().strip() == b"ready"
    return p


def guest_rss_kb():
    """Our own pass over /proc with the default expression: what the daemon must count."""
    pattern = re.compile(r"^(qemu(-(kvm|system-.+)|:.{1,11})|kvm)$")
    total = count = 0
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not pattern.match(f.read().rstrip("\n")):
                    continue
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page_kb
                count += 1
        except OSError:
            pass
    return total, count


def test_once_starts_and_stops_real_ksm():
    # THRES_COEF=100: the threshold is all memory, so free memory is short and KSM must run.
    c = conf("KSM_THRES_COEF=100\nKSM_NPAGES_BOOST=300\n")
    try:
        with RealKsm():
            write(f"{REAL_KSM}/run", "0\n")
            r = subprocess.run([KSMTUNED, "--once", "--config", c], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            total = meminfo()["MemTotal"]
            sleep = max(10, 10 * 16 * 1024 * 1024 // total)
            assert ksm_values(REAL_KSM) == {"run": "1", "pages_to_scan": "300", "sleep_millisecs": str(sleep)}
            assert "Started KSM" in r.stderr, r.stderr
            # Defaults on an idle host: plenty of free memory, few guests: stop.
            write(c, "KSM_THRES_COEF=1\n")
            r = subprocess.run([KSMTUNED, "--once", "--config", c], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert ksm_values(REAL_KSM)["run"] == "0"
    finally:
        os.unlink(c)


def test_guest_process_counted():
    c = conf("KSM_THRES_COEF=1\n")
    g = start_guest(128)
    try:
        # Guests' RSS moves while we look (ours by a few pages, a real qemu on the host by more): bracket the
        # daemon's reading with ours before and after, and take a pass where no guest came or went.
        for attempt in range(5):
            before, count = guest_rss_kb()
            assert count >= 1 and before >= 128 * 1024, (before, count)
            with RealKsm():
                r = subprocess.run([KSMTUNED, "--once", "--dry-run", "--debug", "--config", c],
                                   capture_output=True, text=True, timeout=60)
            after, count_after = guest_rss_kb()
            if count_after == count:
                break
        assert r.returncode == 0, r.stderr
        assert count_after == count, f"guests keep coming and going on this host: {count} then {count_after}"
        m = re.search(r"committed (\d+) \((\d+) guests\)", r.stderr)
        assert m, r.stderr
        got, n = int(m.group(1)), int(m.group(2))
        assert n == count, (n, count)
        # A page table or a few pages of slack around the bracket.
        assert min(before, after) - 1024 <= got <= max(before, after) + 1024, (got, before, after)
    finally:
        g.terminate()
        g.wait()
        os.unlink(c)


def test_daemon_signals_on_real_ksm():
    # No guest events (libvirt, KVM uevents): only the signals sent here cause adjustments.
    c = conf("KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=3600\nKSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n")
    try:
        with RealKsm():
            with Daemon([KSMTUNED, "--debug", "--config", c]) as d:
                assert wait_for(lambda: "adjustment #1" in d.output(), DEADLINE), d.output()
                assert ksm_values(REAL_KSM)["pages_to_scan"] == "300"
                d.signal(signal.SIGUSR1)
                assert wait_for(lambda: "adjustment #2 (SIGUSR1)" in d.output(), DEADLINE), d.output()
                assert ksm_values(REAL_KSM)["pages_to_scan"] == "600"
                write(c, "KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=3600\nKSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n"
                         "KSM_NPAGES_MAX=700\n")
                d.signal(signal.SIGHUP)
                assert wait_for(lambda: "adjustment #3 (reload)" in d.output(), DEADLINE), d.output()
                assert ksm_values(REAL_KSM) == {"run": "1", "pages_to_scan": "700",
                                                "sleep_millisecs": ksm_values(REAL_KSM)["sleep_millisecs"]}
                assert d.stop() == 0
                assert ksm_values(REAL_KSM)["run"] == "1"  # SIGTERM leaves KSM as it is
    finally:
        os.unlink(c)
