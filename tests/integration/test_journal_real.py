# SPDX-License-Identifier: GPL-2.0-or-later
"""A knob of the real KSM turned by a real libvirtd (virsh node-memory-tune, libvirt's
virNodeSetMemoryParameters) while ksmtuned runs: overwritten as the original did, with one warning that says
so, and nothing more while the same outside value keeps coming back.

Root, the real /sys/kernel/mm/ksm (restored with RealKsm) and a real libvirtd; suite 'real', which holds the
machine-wide lock. Memory comes from a temporary /proc, so the decision does not depend on this machine."""

import os
import re
import shutil
import signal
import tempfile

import pytest

from ksmtest import (KSMTUNED, REAL_KSM, Daemon, RealKsm, make_proc, meminfo_text, need_real_ksm, read,
                     skip_or_fail, wait_for, write)

GIB = 1024 * 1024  # kB
TOTAL = 16 * GIB   # sleep_millisecs 10, threshold 3355443 kB with the defaults
THRES = 3355443
# No interval, no guest events: only the test's signals cause adjustments. pages_to_scan pinned at 1000.
CONF = ("KSM_MONITOR_INTERVAL=3600\nKSM_KVM_EVENTS=0\nKSM_LIBVIRT_URI=\n"
        "KSM_NPAGES_MIN=1000\nKSM_NPAGES_MAX=1000\n")


@pytest.fixture(autouse=True, scope="module")
def needs():
    need_real_ksm()
    if not shutil.which("virsh"):
        skip_or_fail("virsh is not installed")


def knob(name):
    return read(os.path.join(REAL_KSM, name)).strip()


def warnings(d, knob_name):
    return re.findall(r"^warning: " + re.escape(REAL_KSM) + "/" + knob_name + r" holds .*$", d.output(), re.M)


def test_virsh_node_memory_tune(lv):
    tmp = tempfile.mkdtemp(prefix="ksmtuned-journal-real-")
    try:
        with RealKsm():
            if os.path.exists(os.path.join(REAL_KSM, "advisor_mode")):
                write(os.path.join(REAL_KSM, "advisor_mode"), "none\n")  # else the kernel owns pages_to_scan
            proc = make_proc(os.path.join(tmp, "proc"), meminfo_text(TOTAL, THRES - 1000))
            conf = os.path.join(tmp, "ksmtuned.conf")
            write(conf, CONF)
            with Daemon([KSMTUNED, "--config", conf, "--ksm-dir", REAL_KSM, "--proc", proc]) as d:
                assert wait_for(lambda: re.search(r"^(Started|Tuned) KSM: pages_to_scan 1000,", d.output(), re.M)
                                and d.settled(), 60), d.output()
                assert knob("pages_to_scan") == "1000" and knob("run") == "1"

                for _ in range(3):  # the same outside value, again and again: one warning
                    r = lv.virsh("node-memory-tune", "--shm-pages-to-scan", "777")
                    assert r.returncode == 0, r.stderr
                    assert knob("pages_to_scan") == "777"  # libvirt did write the kernel's knob
                    d.signal_and_settle(signal.SIGUSR1)
                    assert knob("pages_to_scan") == "1000", d.output()
                found = warnings(d, "pages_to_scan")
                assert len(found) == 1, d.output()
                assert found[0].endswith("holds 777, which ksmtuned did not write (it wrote 1000): writing 1000 as "
                                         "its configuration says; to make a change last, set KSM_NPAGES_MIN and "
                                         "KSM_NPAGES_MAX (or KSM_ADVISOR=scan-time) in ksmtuned.conf"), found

                r = lv.virsh("node-memory-tune", "--shm-pages-to-scan", "555")
                assert r.returncode == 0, r.stderr
                d.signal_and_settle(signal.SIGUSR1)
                assert knob("pages_to_scan") == "1000"
                assert len(warnings(d, "pages_to_scan")) == 2 and "holds 555," in warnings(d, "pages_to_scan")[1]

                r = lv.virsh("node-memory-tune", "--shm-sleep-millisecs", "200")
                assert r.returncode == 0, r.stderr
                d.signal_and_settle(signal.SIGUSR1)
                assert knob("sleep_millisecs") == "10"
                found = warnings(d, "sleep_millisecs")
                assert len(found) == 1 and "holds 200, which ksmtuned did not write (it wrote 10): writing 10 " \
                    "as its configuration says; to make a change last, set KSM_SLEEP_MSEC" in found[0], d.output()
                # Steps of the decision do not reach the operator: no line at info besides KSM started.
                info = [x for x in d.output().splitlines() if x and not x.startswith(("warning: ", "error: "))]
                assert len(info) <= 2, d.output()
                assert d.stop() == 0, d.output()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
