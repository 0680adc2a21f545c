# SPDX-License-Identifier: GPL-2.0-or-later
"""/proc/meminfo as kernels and container views of /proc write it, on temporary trees: a field the policy
uses that is missing or malformed counts as 0 with one warning naming it and the file; only MemTotal is
fatal, and its error names it. For the daemon and for ksmctl."""

import os
import re
import shutil
import signal
import subprocess
import tempfile

from ksmtest import (KSMCTL, KSMTUNED, SOURCE_ROOT, Daemon, ksm_values, make_ksm_dir, make_proc, read,
                     wait_for, write)

FIXTURES = os.environ.get("FIXTURES") or os.path.join(SOURCE_ROOT, "tests", "fixtures")
TOTAL = 16 * 1024 * 1024  # kB; the default threshold is 20 % of it: 3355443 kB
# Free memory short of the threshold only when Buffers is not counted: 3000000 + 400000 = 3400000 > 3355443.
NO_BUFFERS = f"MemTotal: {TOTAL} kB\nMemFree: 3000000 kB\nCached: 400000 kB\nSwapCached: 0 kB\n"
WITH_BUFFERS = f"MemTotal: {TOTAL} kB\nMemFree: 3000000 kB\nBuffers: 100 kB\nCached: 400000 kB\n"


class Env:
    def __init__(self, meminfo):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-meminfo-")
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), run=0)
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, "KSM_MONITOR_INTERVAL=3600\n")

    def meminfo(self, text):
        write(os.path.join(self.proc, "meminfo"), text)

    def args(self, *extra):
        return [KSMTUNED, "--debug", "--config", self.conf, "--ksm-dir", self.ksm, "--proc", self.proc, *extra]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def count(text, pattern):
    return len(re.findall(pattern, text, re.M))


def test_daemon_without_buffers():
    e = Env(NO_BUFFERS)
    warning = rf"^warning: {re.escape(e.proc)}/meminfo has no Buffers line; counting Buffers as 0$"
    try:
        with Daemon(e.args()) as d:
            assert wait_for(lambda: "adjustment #1" in d.output(), 20), d.output()
            out = d.output()
            # Counted as 0, not fatal: free 3400000 kB is above the threshold, so KSM is not started.
            assert re.search(r"^adjustment #1 \(start-up\): total 16777216 free 3400000 ", out, re.M), out
            assert ksm_values(e.ksm)["run"] == "0"
            for _ in range(3):
                d.signal_and_settle(signal.SIGUSR1)
            assert wait_for(lambda: count(d.output(), r"^adjustment #4 "), 10), d.output()
            assert count(d.output(), warning) == 1, d.output()
            # Back, then gone again: said again, once.
            e.meminfo(WITH_BUFFERS)
            d.signal_and_settle(signal.SIGUSR1)
            e.meminfo(NO_BUFFERS)
            d.signal_and_settle(signal.SIGUSR1)
            assert wait_for(lambda: count(d.output(), r"^adjustment #6 "), 10), d.output()
            assert count(d.output(), warning) == 2, d.output()
            assert "Failed" not in d.output() and d.alive(), d.output()
    finally:
        e.cleanup()


def test_daemon_with_malformed_cached():
    e = Env(f"MemTotal: {TOTAL} kB\nMemFree: 1000 kB\nBuffers: 1 kB\nCached: lots\n")
    try:
        with Daemon(e.args()) as d:
            assert wait_for(lambda: "adjustment #1" in d.output(), 20), d.output()
            out = d.output()
            assert f"warning: {e.proc}/meminfo: Cached is not a number of kB; counting Cached as 0" in out, out
            assert re.search(r"^adjustment #1 \(start-up\): total 16777216 free 1001 ", out, re.M), out
            assert ksm_values(e.ksm)["run"] == "1"
    finally:
        e.cleanup()


def test_fixtures_start_the_daemon():
    """Each fixture that lacks a field still lets the daemon start and adjust; it names what it lacks."""
    for name, field in (("no-buffers.meminfo", "has no Buffers line"), ("memtotal-only.meminfo", "has no MemFree line"),
                        ("swapcached-no-cached.meminfo", "has no Cached line")):
        e = Env(read(os.path.join(FIXTURES, "meminfo", name)))
        try:
            r = subprocess.run(e.args("--once", "--dry-run"), capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, (name, r)
            assert f"{e.proc}/meminfo {field}" in r.stderr, (name, r.stderr)
            assert "adjustment #1 (once)" in r.stderr, (name, r.stderr)
        finally:
            e.cleanup()


def test_memtotal_is_fatal_and_named():
    for text, why in (("MemFree: 1 kB\nBuffers: 1 kB\n", "no MemTotal line"),
                      ("MemTotal: lots\nMemFree: 1 kB\n", "MemTotal is not a positive number of kB"),
                      ("MemTotal: 0 kB\nMemFree: 1 kB\n", "MemTotal is not a positive number of kB")):
        e = Env(text)
        try:
            r = subprocess.run(e.args("--once"), capture_output=True, text=True, timeout=30)
            assert r.returncode == 1, r
            assert f"Failed to read {e.proc}/meminfo: {why}" in r.stderr, r.stderr
        finally:
            e.cleanup()


def test_ksmctl_unmerge_names_what_is_missing():
    e = Env(f"MemTotal: {TOTAL} kB\nMemFree: 8000000 kB\nCached: 10 kB\n")
    try:
        make_ksm_dir(e.ksm, run=1, pages_sharing=10)
        r = subprocess.run([KSMCTL, "-d", e.ksm, "--proc", e.proc, "unmerge"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r
        assert f"{e.proc}/meminfo has no Buffers line, counting it as 0" in r.stderr, r.stderr
        assert "MemAvailable" not in r.stderr, r.stderr  # old kernels have none: not a problem
        assert ksm_values(e.ksm)["run"] == "2"
        e.meminfo("MemFree: 8000000 kB\n")
        make_ksm_dir(e.ksm, run=1, pages_sharing=10)
        r = subprocess.run([KSMCTL, "-d", e.ksm, "--proc", e.proc, "unmerge"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1, r
        assert f"Failed to read {e.proc}/meminfo: no MemTotal line" in r.stderr, r.stderr
        assert ksm_values(e.ksm)["run"] == "1"
    finally:
        e.cleanup()


def ksmd_stat(utime):
    """ksmd's /proc/PID/stat as the kernel writes it (PID 37, a child of kthreadd, PF_KTHREAD)."""
    return f"37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 {utime} 0 0 0 25 5 1 0 5 0 0 18446744073709551615\n"


def test_ksmd_stat_malformed_is_named_once():
    """ksmd's stat that stops parsing: one warning naming the file and its fields, and the adjustments go on
    (ksmd's CPU is an input only of KSM_CPU_BUDGET and the adaptive policy)."""
    e = Env(WITH_BUFFERS)
    stat = os.path.join(e.proc, "37", "stat")
    write(e.conf, "KSM_MONITOR_INTERVAL=3600\nKSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n")
    write(stat, ksmd_stat(100))
    try:
        with Daemon(e.args()) as d:
            n = 1
            assert wait_for(lambda: "adjustment #1 " in d.output(), 60), d.output()
            write(stat, ksmd_stat("lots"))
            for _ in range(3):
                n += 1
                d.signal(signal.SIGUSR1)
                assert wait_for(lambda: f"adjustment #{n} " in d.output(), 60), d.output()
            out = d.output()
            warned = re.findall(r"^warning: Cannot read utime and stime of ksmd from (.*)$", out, re.M)
            assert len(warned) == 1 and warned[0].startswith(f"{e.proc}/37/stat: "), out
            assert d.stop() == 0
    finally:
        e.cleanup()
