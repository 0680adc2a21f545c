# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmctl on the real kernel KSM: start, stop, status and (only when nothing is merged) unmerge; restores KSM."""

import errno
import json
import mmap
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ksmtest import (FAKE_GUEST, KSMCTL, REAL_KSM, Daemon, RealKsm, need_real_ksm, read,  # noqa: E402
                     skip_or_fail, wait_for, write)


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_real_ksm()
    if not KSMCTL or not os.access(KSMCTL, os.X_OK):
        pytest.fail(f"KSMCTL={KSMCTL!r} is not an executable", pytrace=False)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Counters the kernel moves by itself while ksmd runs; the rest must equal what sysfs shows.
MOVING = {"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "full_scans", "pages_scanned",
          "pages_skipped", "ksm_zero_pages", "general_profit", "stable_node_chains", "stable_node_dups",
          "saved_bytes", "pages_to_scan"}


def ksmctl(*args):
    env = {k: v for k, v in os.environ.items() if k != "KSM_MAX_KERNEL_PAGES"}
    return subprocess.run([KSMCTL, *args], capture_output=True, text=True, env=env, timeout=30)


# A failure bound only: a passing test never waits for it, a slow machine (ASan, load) must not hit it.
DEADLINE = 60


def knob(name):
    return read(os.path.join(REAL_KSM, name)).strip()


def general_profit():
    return int(knob("general_profit")) if os.path.exists(os.path.join(REAL_KSM, "general_profit")) else None


def test_start_stop():
    with RealKsm():
        p = ksmctl("stop")
        assert p.returncode == 0 and p.stderr == "", p
        assert knob("run") == "0"
        p = ksmctl("start", "-v")
        assert p.returncode == 0, p
        assert knob("run") == "1"
        # Linux 6.18 has no max_kernel_pages: said at debug level only, never as an error.
        assert not os.path.exists(os.path.join(REAL_KSM, "max_kernel_pages"))
        assert "max_kernel_pages" in p.stderr and "fail" not in p.stderr.lower(), p.stderr
        p = ksmctl("stop")
        assert p.returncode == 0, p
        assert knob("run") == "0"


def check_status_agrees(doc):
    for key, value in doc.items():
        path = os.path.join(REAL_KSM, key)
        if not os.path.exists(path):
            continue
        raw = read(path).strip()
        if key == "advisor_mode":
            raw = raw.split("[", 1)[1].split("]", 1)[0]
            assert value == raw, (key, value, raw)
        elif key not in MOVING:
            assert value == int(raw), (key, value, raw)
    for name in os.listdir(REAL_KSM):
        if name in ("run", "pages_to_scan", "sleep_millisecs", "pages_shared", "pages_sharing", "pages_unshared",
                    "pages_volatile", "full_scans", "max_page_sharing", "merge_across_nodes", "use_zero_pages",
                    "general_profit", "ksm_zero_pages", "smart_scan", "advisor_mode"):
            assert name in doc, f"{name} is in {REAL_KSM} but not in the status"
    assert doc["page_size"] == PAGE_SIZE
    assert doc["running"] is (doc["run"] == 1)


def test_status_json():
    with RealKsm():
        for verb, run in (("start", 1), ("stop", 0)):
            assert ksmctl(verb).returncode == 0
            p = ksmctl("status", "--json")
            assert p.returncode == 0 and p.stderr == "", p
            doc = json.loads(p.stdout)
            assert doc["run"] == run and doc["running"] is (run == 1), doc
            check_status_agrees(doc)
            p = ksmctl("status")
            assert p.returncode == 0, p
            assert f"(run = {run})" in p.stdout, p.stdout


def test_status_unprivileged():
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KSMCTL, "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    check_status_agrees(json.loads(p.stdout))


def test_unmerge_when_nothing_merged():
    with RealKsm():
        assert ksmctl("stop").returncode == 0
        if int(knob("pages_sharing")) != 0 or int(knob("ksm_zero_pages") if os.path.exists(
                os.path.join(REAL_KSM, "ksm_zero_pages")) else 0) != 0:
            print("  (pages are merged on this machine: not unmerging them)", flush=True)
            return
        p = ksmctl("unmerge")
        assert p.returncode == 0, p
        assert knob("run") == "2"


def test_status_sees_merging():
    """16 MiB of identical mergeable pages: ksmctl start lets ksmd merge them, status shows the saving."""
    size = 16 << 20
    with RealKsm():
        before = int(knob("pages_sharing"))
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            region.write(b"\x5a" * size)
            region.madvise(mmap.MADV_MERGEABLE)
            if "[scan-time]" in (read(os.path.join(REAL_KSM, "advisor_mode")) if os.path.exists(
                    os.path.join(REAL_KSM, "advisor_mode")) else ""):
                write(os.path.join(REAL_KSM, "advisor_mode"), "none\n")
            write(os.path.join(REAL_KSM, "pages_to_scan"), "1000\n")
            write(os.path.join(REAL_KSM, "sleep_millisecs"), "10\n")
            assert ksmctl("start").returncode == 0
            assert wait_for(lambda: int(knob("pages_sharing")) >= before + size // PAGE_SIZE // 2, DEADLINE), \
                knob("pages_sharing")
            assert ksmctl("stop").returncode == 0  # ksmd stands still from here
            # ... but another process's merged pages may still go away (it exits, unmaps): compare with what
            # sysfs says just before and just after, and take a reading where the two agree.
            for _ in range(10):
                sharing, profit = int(knob("pages_sharing")), general_profit()
                p = ksmctl("status", "--json")
                text = ksmctl("status")
                if (int(knob("pages_sharing")), general_profit()) == (sharing, profit):
                    break
            assert p.returncode == 0 and text.returncode == 0, (p, text)
            doc = json.loads(p.stdout)
            assert doc["pages_sharing"] == sharing, (doc, sharing)
            assert doc["saved_bytes"] >= sharing * PAGE_SIZE >= size // 2, doc
            assert doc["scan_pages_per_sec"] == 100000, doc
            if "general_profit" in doc:
                assert doc["general_profit"] == profit and doc["general_profit"] > 0, (doc, profit)
            assert f"pages_sharing:       {sharing}\n" in text.stdout, text.stdout
        finally:
            region.close()
            # With the pages gone, a few scans drop the stale counters, so nothing looks merged afterwards.
            write(os.path.join(REAL_KSM, "run"), "1\n")
            wait_for(lambda: int(knob("pages_sharing")) <= before, timeout=DEADLINE)


def real_ksmd():
    """(PID, utime + stime) of the kernel thread ksmd, found as a person would: a child of kthreadd named ksmd."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = read(f"/proc/{name}/stat")
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 1:].split()
        if comm == "ksmd" and fields[1] == "2":
            return int(name), int(fields[11]) + int(fields[12])
    return None, None


def ksmd_ticks(pid):
    fields = read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_ksmd_cpu_total():
    """ksmd_pid is the real ksmd's PID; ksmd_cpu_seconds what its /proc/PID/stat says, read around ksmctl."""
    pid, _ = real_ksmd()
    assert pid, "no ksmd in /proc, yet /sys/kernel/mm/ksm exists"
    before = ksmd_ticks(pid)
    p = ksmctl("status", "--json", "--sample=0")
    after = ksmd_ticks(pid)
    assert p.returncode == 0 and p.stderr == "", p
    doc = json.loads(p.stdout)
    assert doc["ksmd_pid"] == pid, (doc, pid)
    assert doc["sample_ms"] == 0 and "ksmd_cpu_percent" not in doc, doc
    assert before / CLK_TCK - 1e-9 <= doc["ksmd_cpu_seconds"] <= after / CLK_TCK + 1e-9, (doc, before, after)
    # The default window, 500 ms: a percentage, never negative.
    p = ksmctl("status", "--json")
    assert p.returncode == 0 and p.stderr == "", p
    doc = json.loads(p.stdout)
    assert doc["ksmd_pid"] == pid and doc["sample_ms"] == 500, doc
    assert 0 <= doc["ksmd_cpu_percent"] <= 100 * (1 + 2 / (CLK_TCK * 0.5)), doc
    p = ksmctl("status")
    assert p.returncode == 0, p
    assert f"s in total (PID {pid})\n" in p.stdout and "% of one CPU over 500 ms, " in p.stdout, p.stdout


def test_ksmd_cpu_busy():
    """With ksmd scanning 256 MiB of mergeable memory at 500,000 pages/s, it uses CPU, and status says so."""
    if not FAKE_GUEST or not os.access(FAKE_GUEST, os.X_OK):
        skip_or_fail(f"FAKE_GUEST={FAKE_GUEST!r} is not an executable")
    pid, _ = real_ksmd()
    with RealKsm() as saved:
        before_sharing = int(knob("pages_sharing"))
        guest = Daemon([FAKE_GUEST, "256", "--mergeable", "--fill", "same"])
        try:
            assert wait_for(lambda: "ready" in guest.output(), DEADLINE), guest.output()
            if "advisor_mode" in saved.saved:
                write(os.path.join(REAL_KSM, "advisor_mode"), "none\n")  # else pages_to_scan is refused
            write(os.path.join(REAL_KSM, "pages_to_scan"), "5000\n")
            write(os.path.join(REAL_KSM, "sleep_millisecs"), "10\n")
            write(os.path.join(REAL_KSM, "run"), "1\n")
            t0, start = ksmd_ticks(pid), time.monotonic()
            p = ksmctl("status", "--json", "--sample=1000")
            t1, elapsed = ksmd_ticks(pid), time.monotonic() - start
            assert p.returncode == 0 and p.stderr == "", p
            doc = json.loads(p.stdout)
            assert doc["ksmd_pid"] == pid and doc["sample_ms"] == 1000, doc
            # At most what /proc shows for the whole run of ksmctl, over at least the 1 s asked for.
            assert 0 < doc["ksmd_cpu_percent"] <= (t1 - t0) / CLK_TCK / 1.0 * 100 + 1e-6, (doc, t0, t1, elapsed)
            assert t0 / CLK_TCK <= doc["ksmd_cpu_seconds"] <= t1 / CLK_TCK, (doc, t0, t1)
            p = ksmctl("status", "--sample=300")
            assert p.returncode == 0, p
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("ksmd CPU:")]
            assert line and "% of one CPU over 300 ms, " in line[0] and line[0].endswith(f"(PID {pid})"), p.stdout
        finally:
            guest.stop()
            # With the pages gone, a few scans drop the stale counters, so nothing looks merged afterwards.
            write(os.path.join(REAL_KSM, "run"), "1\n")
            wait_for(lambda: int(knob("pages_sharing")) <= before_sharing, timeout=DEADLINE)


def test_status_advisor_scan_time():
    """In scan-time mode the kernel owns pages_to_scan (a write is EINVAL), and status says so."""
    if not os.path.exists(os.path.join(REAL_KSM, "advisor_mode")):
        print("  (no advisor_mode before Linux 6.8: nothing to check)", flush=True)
        return
    with RealKsm() as saved:
        try:
            write(os.path.join(REAL_KSM, "advisor_mode"), "scan-time\n")
            try:
                write(os.path.join(REAL_KSM, "pages_to_scan"), "123\n")
            except OSError as e:
                assert e.errno == errno.EINVAL, e
            else:
                raise AssertionError("the kernel took a write to pages_to_scan in scan-time mode")
            p = ksmctl("status", "--sample=0")
            assert p.returncode == 0 and p.stderr == "", p
            pages = knob("pages_to_scan")
            assert f"\npages_to_scan:       {pages} (set by the scan-time advisor; the kernel refuses writes)\n" \
                in p.stdout, p.stdout
            want = (f"\nadvisor:             scan-time (target scan time {knob('advisor_target_scan_time')} s, "
                    f"max CPU {knob('advisor_max_cpu')}%, pages_to_scan {knob('advisor_min_pages_to_scan')}.."
                    f"{knob('advisor_max_pages_to_scan')}): the kernel sets pages_to_scan\n")
            assert want in p.stdout, p.stdout
            p = ksmctl("status", "--json", "--sample=0")
            assert p.returncode == 0, p
            assert json.loads(p.stdout)["advisor_mode"] == "scan-time", p.stdout
        finally:
            # The mode first: pages_to_scan can be written back only once the advisor lets go of it.
            write(os.path.join(REAL_KSM, "advisor_mode"), saved.saved["advisor_mode"] + "\n")
            if saved.saved["advisor_mode"] == "none":
                write(os.path.join(REAL_KSM, "pages_to_scan"), saved.saved["pages_to_scan"] + "\n")
        p = ksmctl("status", "--sample=0")
        assert "refuses writes" not in p.stdout or saved.saved["advisor_mode"] == "scan-time", p.stdout
