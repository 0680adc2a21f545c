# SPDX-License-Identifier: GPL-2.0-or-later
"""What ksmtuned writes to its log at the level an operator reads (no DEBUG, no --debug), on temporary KSM and
/proc trees: KSM started or stopped, failures and their end, a knob someone else turned; not every step."""

import os
import re
import shutil
import signal
import tempfile

from ksmtest import KSMTUNED, Daemon, ksm_values, make_ksm_dir, make_proc, meminfo_text, read, write

GIB = 1024 * 1024  # kB
TOTAL = 16 * GIB   # sleep_millisecs 10, threshold 3355443 kB with the defaults
THRES = 3355443
# 14 GiB of guests: with the threshold they exceed the host, so KSM never stops, whatever free memory does.
GUESTS = [(4242, "qemu-system-x86", 10 * GIB, ["qemu-system-x86_64"]), (4243, "kvm", 4 * GIB, ["kvm"])]
# No interval, no guest events: only the test's signals cause adjustments.
QUIET = "KSM_MONITOR_INTERVAL=3600\nKSM_KVM_EVENTS=0\nKSM_LIBVIRT_URI=\n"


class Env:
    def __init__(self, conf="", free=THRES - 1000, procs=GUESTS):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-journal-")
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), run=0)
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(TOTAL, free), procs)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, QUIET + conf)
        # No --debug: what an operator sees with the default configuration.
        self.d = Daemon([KSMTUNED, "--config", self.conf, "--ksm-dir", self.ksm, "--proc", self.proc])


    def meminfo(self, free):
        write(os.path.join(self.proc, "meminfo"), meminfo_text(TOTAL, free))

    def adjust(self):
        self.d.signal_and_settle(signal.SIGUSR1)

    def knob(self, name):
        return read(os.path.join(self.ksm, name)).strip()

    def close(self):
        rc = self.d.stop()
        out = self.d.output()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert rc == 0, f"exit status {rc}:\n{out}"
        return out


def info_lines(text):
    """The lines logged at info: on stderr, warnings and errors carry a prefix and debug lines are not shown."""
    return [line for line in text.splitlines() if line and not line.startswith(("warning: ", "error: "))]


def wait_started(e):
    from ksmtest import wait_for
    assert wait_for(lambda: "Started KSM" in e.d.output() and e.d.settled(), 30), e.d.output()


def test_hovering_free_memory_is_quiet():
    """MemFree alternating 1000 kB above and below the threshold: 100 adjustments step pages_to_scan up and
    down, and write at most 2 lines at info."""
    e = Env()
    try:
        wait_started(e)
        before = len(e.d.output().splitlines())
        seen = set()
        for i in range(100):
            e.meminfo(THRES + 1000 if i % 2 == 0 else THRES - 1000)
            e.adjust()
            seen.add(e.knob("pages_to_scan"))
        assert len(seen) > 1, f"pages_to_scan never moved: {seen}"  # the steps did happen
        assert e.knob("run") == "1"
        during = e.d.output().splitlines()[before:]
        info = info_lines("\n".join(during))
        print(f"info lines in 100 adjustments: {len(info)}")
        assert len(info) <= 2, "\n".join(during)
    finally:
        out = e.close()
    assert len(re.findall(r"^Started KSM", out, re.M)) == 1, out
