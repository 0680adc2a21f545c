# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned's modern-kernel options on the real KSM: the advisor, merged-page accounting, metrics, unmerging."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ksmtest import (FAKE_GUEST, KSMTUNED, REAL_KSM, RealKsm, need_real_ksm, read, wait_for, write)


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_real_ksm()


@pytest.fixture(autouse=True)
def restore_ksm():
    """Each test leaves KSM as it found it (the advisor's mode first of all)."""
    with RealKsm():
        yield


@pytest.fixture(scope="module")
def g():
    """A guest process whose pages have merged, shared by the tests that read its accounting."""
    with RealKsm():
        guest = start_merged_guest()
        try:
            yield guest
        finally:
            guest.terminate()
            guest.wait()

PAGE = os.sysconf("SC_PAGE_SIZE")
GUEST_MIB = 64


def conf(text):
    f = tempfile.NamedTemporaryFile("w", prefix="ksmtuned-modern-", suffix=".conf", delete=False)
    f.write("KSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n" + text)
    f.close()
    return f.name


def once(c, *extra):
    r = subprocess.run([KSMTUNED, "--once", "--debug", "--config", c, *extra], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr


def knob(name):
    return read(os.path.join(REAL_KSM, name)).strip()


def merging_pages(pid):
    return int(read(f"/proc/{pid}/ksm_merging_pages").strip())


def rss_kb(pid):
    return int(read(f"/proc/{pid}/statm").split()[1]) * PAGE // 1024


def test_advisor_honoured():
    c = conf("KSM_ADVISOR=scan-time\nKSM_THRES_COEF=100\n")
    try:
        out = once(c)
        assert "[scan-time]" in knob("advisor_mode"), out
        assert "Failed" not in out, out  # no refused write of pages_to_scan
        assert "advisor" in out, out
        assert knob("pages_to_scan") != "300", out  # the advisor's value, not ours
        assert knob("run") == "1"
    finally:
        os.unlink(c)


def start_merged_guest():
    g = subprocess.Popen(["qemu-system-x86_64", str(GUEST_MIB), "--mergeable", "--fill", "same"],
                         executable=FAKE_GUEST, stdout=subprocess.PIPE,
                         env=dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86"))
    try:
        assert g.stdout.readline().strip() == b"ready"
        write(f"{REAL_KSM}/pages_to_scan", "5000\n")
        write(f"{REAL_KSM}/sleep_millisecs", "10\n")
        write(f"{REAL_KSM}/run", "1\n")
        want = GUEST_MIB * 1024 * 1024 // PAGE * 9 // 10
        assert wait_for(lambda: merging_pages(g.pid) >= want, 60), f"only {merging_pages(g.pid)} pages merged"
    except BaseException:
        g.kill()  # ours, by PID: never left behind
        g.wait()
        raise
    return g


def test_merged_accounting_and_metrics(g):
    d = tempfile.mkdtemp(prefix="ksmtuned-metrics-")
    metrics = os.path.join(d, "ksmtuned.prom")
    c = conf(f"KSM_COMMITTED=rss-minus-merged\nKSM_THRES_COEF=100\nKSM_METRICS_FILE={metrics}\n")
    try:
        # ksmd keeps merging while we look: bracket the daemon's reading with one before and one after.
        merged_before = merging_pages(g.pid)
        before = rss_kb(g.pid) - merged_before * PAGE // 1024
        out = once(c)
        after = rss_kb(g.pid) - merging_pages(g.pid) * PAGE // 1024
        m = re.search(r"committed (\d+) \((\d+) guests\)", out)
        assert m, out
        # Only our stand-in is a guest on this host while the test runs; its merged pages are not committed.
        assert m.group(2) == "1", f"the daemon counted {m.group(2)} guests: another guest process runs here\n{out}"
        got, rss = int(m.group(1)), rss_kb(g.pid)
        assert min(before, after) - 1024 <= got <= max(before, after) + 1024, (got, before, after)
        assert got < rss / 2, (got, rss)
        import promparse
        fams = promparse.parse(read(metrics), strict_names=True)
        sharing = fams["ksmtuned_ksm_pages_sharing"]["samples"][0][2]
        # pages_sharing as the daemon read it, against our stand-in's merged pages read before it: merging only
        # grows them in between (all its pages are alike: one KSM page per 256 sharers, the rest share).
        assert sharing >= merged_before * 0.9, (sharing, merged_before)
        assert fams["ksmtuned_guest_committed_bytes"]["samples"][0][2] == got * 1024
        assert fams["ksmtuned_ksmd_cpu_seconds_total"]["samples"][0][2] > 0
    finally:
        os.unlink(c)
        shutil.rmtree(d, ignore_errors=True)


def test_unmerge_stop_mode(g):
    assert merging_pages(g.pid) > 0
    c = conf("KSM_STOP_MODE=unmerge\nKSM_THRES_COEF=1\n")
    try:
        out = once(c)
        assert "-> stop and unmerge" in out, out
        assert knob("run") == "2", out
        assert int(knob("pages_sharing")) == 0, out
        assert merging_pages(g.pid) == 0, out
    finally:
        os.unlink(c)
