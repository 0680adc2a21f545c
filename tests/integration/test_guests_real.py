# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmctl guests and the per-guest metrics on the real kernel: two guest processes of identical content
marked mergeable, one of the same content not marked (QEMU's -machine mem-merge=off); after merging, both
report what /proc/PID/ksm_merging_pages says, and the third nothing, with the reason. Then real libvirt
guests, one with <memoryBacking><nosharepages/>."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ksmtest import (FAKE_GUEST, KSMCTL, KSMTUNED, REAL_KSM, RealKsm, need_real_ksm, read,
                     wait_for, write)

PAGE = os.sysconf("SC_PAGE_SIZE")
GUEST_MIB = 32
PAGES = GUEST_MIB * 1024 * 1024 // PAGE
NAMES = ("ksmtest-guests-a", "ksmtest-guests-b", "ksmtest-guests-c")


class Guests:
    """Three stand-ins for QEMU, named as libvirt names guests; stopped by PID."""

    def __enter__(self):
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-guests-real-")
        env = dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86")
        for name in NAMES:
            merge = [] if name.endswith("-c") else ["--mergeable"]
            machine = "pc,accel=kvm,mem-merge=off" if name.endswith("-c") else "pc,accel=kvm"
            p = subprocess.Popen(["qemu-system-x86_64", str(GUEST_MIB), *merge, "--fill", "shared100",
                                  "-name", f"guest={name},debug-threads=on", "-machine", machine],
                                 executable=FAKE_GUEST, stdout=subprocess.PIPE, env=env)
            self.procs.append(p)
            assert p.stdout.readline().strip() == b"ready"
        self.pids = {name: p.pid for name, p in zip(NAMES, self.procs)}
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        self.metrics = os.path.join(self.dir, "ksmtuned.prom")
        # The defaults (guests by process name), without libvirt or uevents, and the metrics file.
        write(self.conf, f"KSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\nKSM_THRES_COEF=100\nKSM_METRICS_FILE={self.metrics}\n")
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def need_kernel():
    need_real_ksm()
    if not os.path.exists("/proc/self/ksm_merging_pages"):
        from ksmtest import skip_or_fail
        skip_or_fail("this kernel has no /proc/PID/ksm_merging_pages (Linux 5.19 and later have)")


@pytest.fixture(scope="module")
def g():
    """The three guests, merged, for the tests of this file; KSM's knobs restored after them."""
    need_kernel()
    with RealKsm(), Guests() as guests:
        merge(guests)
        yield guests


def merging_pages(pid):
    return int(read(f"/proc/{pid}/ksm_merging_pages").strip())


def ksm_stat(pid):
    out = {}
    for line in read(f"/proc/{pid}/ksm_stat").splitlines():
        k, v = line.replace(":", " ").split(None, 1)
        out[k] = v.strip()
    return out


def merge(g):
    write(f"{REAL_KSM}/pages_to_scan", "5000\n")
    write(f"{REAL_KSM}/sleep_millisecs", "10\n")
    write(f"{REAL_KSM}/run", "1\n")
    a, b = g.pids[NAMES[0]], g.pids[NAMES[1]]
    # Each page of a has its twin in b: all of both merge. Wait until they have, then until a full scan
    # has passed without change, so that the figures hold still while we compare them.
    assert wait_for(lambda: merging_pages(a) >= PAGES * 9 // 10 and merging_pages(b) >= PAGES * 9 // 10, 60), \
        (merging_pages(a), merging_pages(b))
    scans = int(read(f"{REAL_KSM}/full_scans"))
    assert wait_for(lambda: int(read(f"{REAL_KSM}/full_scans")) >= scans + 2, 60)


def bracket(pid, fn):
    """fn()'s result with /proc/PID/ksm_merging_pages read just before and just after it."""
    before = merging_pages(pid)
    got = fn()
    after = merging_pages(pid)
    return got, before, after


def guests_json(g):
    r = subprocess.run([KSMCTL, "guests", "--json", "--config", g.conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ksmctl_guests_agree_with_the_kernel(g):
    a, b, c = (g.pids[n] for n in NAMES)
    doc, before, after = bracket(a, lambda: guests_json(g))
    rows = {x["pid"]: x for x in doc["guests"]}
    for pid, name in zip((a, b, c), NAMES):
        assert pid in rows, (pid, doc)
        assert rows[pid]["name"] == name and rows[pid]["name_source"] == "cmdline", rows[pid]
    assert min(before, after) * PAGE <= rows[a]["merged_bytes"] <= max(before, after) * PAGE, \
        (rows[a]["merged_bytes"], before, after)
    assert rows[a]["merged_bytes"] >= PAGES * 9 // 10 * PAGE
    assert rows[b]["merged_bytes"] == merging_pages(b) * PAGE, (rows[b], merging_pages(b))
    assert rows[a]["mergeable"] is True and rows[b]["mergeable"] is True
    for pid in (a, b):
        st = ksm_stat(pid)
        if "ksm_process_profit" in st:
            assert rows[pid]["profit_bytes"] == int(st["ksm_process_profit"]), (rows[pid], st)
            assert rows[pid]["profit_bytes"] > 0
    # The third has the same content, never marked: nothing merged, and why.
    assert merging_pages(c) == 0
    assert rows[c]["merged_bytes"] == 0, rows[c]
    assert rows[c]["mergeable"] is False, rows[c]
    # Named as libvirt names guests, with mem-merge=off: what libvirt's <nosharepages/> gives.
    assert rows[c]["reason"] == "nosharepages", rows[c]
    assert "<memoryBacking><nosharepages/>" in rows[c]["reason_text"] and "mem-merge=off" in rows[c]["reason_text"]
    # Sorted by memory saved: the two merged guests before the third.
    order = [x["pid"] for x in doc["guests"]]
    assert order.index(c) > max(order.index(a), order.index(b)), order
    # KSM as a whole holds at least what our guests merged (other processes may merge too).
    assert doc["ksm"]["merged_bytes"] >= rows[a]["merged_bytes"] + rows[b]["merged_bytes"] - 2 * 1024 * PAGE
    print(f"  merged: a {rows[a]['merged_bytes']} bytes (ksm_merging_pages {before}..{after} pages), "
          f"b {rows[b]['merged_bytes']} bytes, c {rows[c]['merged_bytes']} bytes", flush=True)


def test_metrics_agree_with_the_kernel(g):
    import promparse
    a, b, c = (g.pids[n] for n in NAMES)

    def once():
        r = subprocess.run([KSMTUNED, "--once", "--config", g.conf], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return promparse.parse(read(g.metrics), strict_names=True)

    fams, before, after = bracket(a, once)

    def value(name, **labels):
        got = [s[2] for s in fams[name]["samples"] if s[1] == labels]
        assert len(got) == 1, (name, labels, fams.get(name))
        return got[0]

    merged_a = value("ksmtuned_guest_merged_bytes", guest=NAMES[0])
    assert min(before, after) * PAGE <= merged_a <= max(before, after) * PAGE, (merged_a, before, after)
    assert value("ksmtuned_guest_merged_bytes", guest=NAMES[1]) == merging_pages(b) * PAGE
    assert value("ksmtuned_guest_merged_bytes", guest=NAMES[2]) == 0
    assert value("ksmtuned_guest_mergeable", guest=NAMES[0]) == 1
    assert value("ksmtuned_guest_mergeable", guest=NAMES[2], reason="nosharepages") == 0
    assert value("ksmtuned_guest_processes", guest=NAMES[2]) == 1
    rss = int(read(f"/proc/{c}/statm").split()[1]) * PAGE
    assert abs(value("ksmtuned_guest_resident_bytes", guest=NAMES[2]) - rss) <= 64 * PAGE
    for fam in fams.values():
        for _, labels, _ in fam["samples"]:
            assert "pid" not in labels
    print(f"  metrics: a {merged_a} bytes (ksm_merging_pages {before}..{after} pages)", flush=True)


def test_libvirt_guests(lv, g):
    """Real libvirt guests: named by their domain, and <nosharepages/> found with its reason."""
    import promparse
    xml = ("<domain type='kvm'><name>ksmtuned-test-nosharepages</name><memory unit='MiB'>128</memory>"
           "<vcpu>1</vcpu><memoryBacking><nosharepages/></memoryBacking>"
           "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
           "<emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/></devices></domain>")
    path = os.path.join(g.dir, "nosharepages.xml")
    write(path, xml)
    r = lv.virsh("create", path)
    assert r.returncode == 0, r.stderr
    lv.create("ksmtuned-test-sharing", 128)
    try:
        rows = {x["name"]: x for x in guests_json(g)["guests"]}
        assert "ksmtuned-test-nosharepages" in rows and "ksmtuned-test-sharing" in rows, rows
        no, yes = rows["ksmtuned-test-nosharepages"], rows["ksmtuned-test-sharing"]
        assert no["name_source"] == "cmdline" and no["mergeable"] is False and no["reason"] == "nosharepages", no
        assert "mem-merge=off" in read(f"/proc/{no['pid']}/cmdline").replace("\0", " ")
        assert yes["mergeable"] is True and "reason" not in yes, yes
        r = subprocess.run([KSMTUNED, "--once", "--config", g.conf], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        fams = promparse.parse(read(g.metrics), strict_names=True)
        got = {(s[1]["guest"], s[1].get("reason"), s[2]) for s in fams["ksmtuned_guest_mergeable"]["samples"]}
        assert ("ksmtuned-test-nosharepages", "nosharepages", 0) in got, got
        assert ("ksmtuned-test-sharing", None, 1) in got, got
    finally:
        lv.destroy("ksmtuned-test-nosharepages")
        lv.destroy("ksmtuned-test-sharing")
