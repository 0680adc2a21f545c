# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers for ksmtuned's integration tests: results, skips, fake trees, real-KSM save/restore."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77  # meson's exit status for a skipped test
CI = os.environ.get("CI") == "true"
KSMTUNED = os.environ.get("KSMTUNED", "")
KSMCTL = os.environ.get("KSMCTL", "")
FAKE_GUEST = os.environ.get("FAKE_GUEST", "")
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
REAL_KSM = "/sys/kernel/mm/ksm"
KNOBS_TO_RESTORE = ("pages_to_scan", "sleep_millisecs", "advisor_mode", "run")


def skip_or_fail(why):
    """A missing component skips on a developer machine, and fails under CI=true, where all must run."""
    if CI:
        print(f"FAIL: {why} (CI=true: this test must run, not skip)", flush=True)
        sys.exit(1)
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


def need_root(what="this test"):
    if os.geteuid() != 0:
        skip_or_fail(f"{what} needs root")


def need_real_ksm():
    need_root("the real kernel KSM")
    if not os.access(os.path.join(REAL_KSM, "run"), os.W_OK):
        skip_or_fail(f"{REAL_KSM}/run is missing or not writable")


class Results:
    """Run test functions, print one line each, end with 'N passed, N failed'."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def run(self, fn, *args):
        label = fn.__name__
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - any failure of a test is reported and counted
            self.failed += 1
            print(f"FAIL {label}", flush=True)
            traceback.print_exc(file=sys.stdout)
        else:
            self.passed += 1
            print(f"ok   {label}", flush=True)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        if self.passed + self.failed == 0:
            print("no test ran", flush=True)
            sys.exit(1)
        sys.exit(1 if self.failed else 0)


def write(path, text):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


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


def wait_for(pred, timeout=10.0, step=0.02):
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
        for k in KNOBS_TO_RESTORE:  # run last: pages_to_scan is refused while the advisor owns it
            if k in self.saved:
                try:
                    write(os.path.join(REAL_KSM, k), self.saved[k] + "\n")
                except OSError as e:
                    print(f"warning: could not restore {REAL_KSM}/{k}={self.saved[k]}: {e}", flush=True)
        return False


class Daemon:
    """A process we started, stopped by its PID only."""

    def __init__(self, args, env=None, **kw):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, **kw)
        self.pid = self.proc.pid

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

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
