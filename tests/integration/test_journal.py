# SPDX-License-Identifier: GPL-2.0-or-later
"""What ksmtuned writes to its log at the level an operator reads (no DEBUG, no --debug), on temporary KSM and
/proc trees: KSM started or stopped, failures and their end, a knob someone else turned; not every step."""

import os
import re
import shutil
import signal
import tempfile

from ksmtest import KSMTUNED, Daemon, make_ksm_dir, make_proc, meminfo_text, read, wait_for, write

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
        """Stop the daemon (it must exit 0), remove the trees; return all it logged."""
        try:
            assert self.d.stop() == 0, f"exit status {self.d.proc.returncode}:\n{self.d.output()}"
            return self.d.output()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def info_lines(text):
    """The lines logged at info: on stderr, warnings and errors carry a prefix and debug lines are not shown."""
    return [line for line in text.splitlines() if line and not line.startswith(("warning: ", "error: "))]


def wait_started(e):
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


def count(pattern, text):
    return len(re.findall(pattern, text, re.M))


def test_start_stop_and_failures_once():
    """KSM started, stopped, started again: each said once at info; a failure once as a warning while it lasts,
    and its end once at info."""
    e = Env()
    try:
        wait_started(e)
        for _ in range(3):
            e.adjust()
        assert count(r"^Started KSM: pages_to_scan \d+, sleep_millisecs 10 \(free .* < threshold ", e.d.output()) == 1, \
            e.d.output()
        # The guests go away and memory frees up: KSM stops, said once however many adjustments follow.
        for pid, *_ in GUESTS:
            shutil.rmtree(os.path.join(e.proc, str(pid)))
        e.meminfo(10 * GIB)
        for _ in range(3):
            e.adjust()
        assert e.knob("run") == "0"
        assert count(r"^Stopped KSM: free 10\.0 GiB > threshold 3\.2 GiB, guests commit 0 kB < ", e.d.output()) == 1, \
            e.d.output()
        # Short of memory again: started again, once.
        e.meminfo(THRES - 1000)
        for _ in range(3):
            e.adjust()
        assert e.knob("run") == "1"
        assert count(r"^Started KSM", e.d.output()) == 2, e.d.output()

        # pages_to_scan cannot be written (a directory stands there): one warning, however often it fails.
        os.unlink(os.path.join(e.ksm, "pages_to_scan"))
        os.mkdir(os.path.join(e.ksm, "pages_to_scan"))
        for _ in range(3):
            e.adjust()
        out = e.d.output()
        assert count(r"^warning: Failed to write \d+ to .*/pages_to_scan: ", out) == 1, out
        os.rmdir(os.path.join(e.ksm, "pages_to_scan"))
        write(os.path.join(e.ksm, "pages_to_scan"), "100\n")
        for _ in range(3):
            e.adjust()
        assert count(r"^Writing .*/pages_to_scan works again$", e.d.output()) == 1, e.d.output()

        # meminfo gone: one warning, then one line when it reads again.
        before = len(e.d.output().splitlines())
        os.unlink(os.path.join(e.proc, "meminfo"))
        for _ in range(3):
            e.adjust()
        e.meminfo(THRES - 1000)
        for _ in range(3):
            e.adjust()
        during = e.d.output().splitlines()[before:]
        assert len([x for x in during if x.startswith("warning: ") and "meminfo" in x]) == 1, during
        assert len([x for x in info_lines("\n".join(during)) if "meminfo" in x]) == 1, during
    finally:
        out = e.close()
    # Nothing else reached the operator: no step of pages_to_scan.
    assert "Tuned KSM" not in out, out


def outside(e, knob, value):
    """Someone else writes `value` to `knob`, then an adjustment runs."""
    write(os.path.join(e.ksm, knob), f"{value}\n")
    e.adjust()


def test_outside_change_warned_once():
    """A knob ksmtuned manages found holding a value it did not write: overwritten, with one warning naming the
    knob, the value found, the value written and the keys that make a change last; not again while the same
    outside value keeps coming back, again for another value."""
    e = Env(conf="KSM_NPAGES_MIN=1000\nKSM_NPAGES_MAX=1000\n")
    try:
        wait_started(e)
        assert e.knob("pages_to_scan") == "1000"
        for _ in range(3):
            outside(e, "pages_to_scan", 777)
            assert e.knob("pages_to_scan") == "1000"  # the original's decision stands
        out = e.d.output()
        want = (r"^warning: .*/pages_to_scan holds 777, which ksmtuned did not write \(it wrote 1000\): writing 1000 "
                r"as its configuration says; to make a change last, set KSM_NPAGES_MIN and KSM_NPAGES_MAX")
        assert count(want, out) == 1, out
        assert count(r"^warning: .*holds", out) == 1, out
        outside(e, "pages_to_scan", 555)
        assert count(r"^warning: .*/pages_to_scan holds 555, .*\(it wrote 1000\): writing 1000", e.d.output()) == 1
        outside(e, "sleep_millisecs", 200)
        assert e.knob("sleep_millisecs") == "10"
        assert count(r"^warning: .*/sleep_millisecs holds 200, which ksmtuned did not write \(it wrote 10\): "
                     r"writing 10 .*set KSM_SLEEP_MSEC in ksmtuned\.conf$", e.d.output()) == 1, e.d.output()
        outside(e, "run", 0)
        assert e.knob("run") == "1"
        assert count(r"^warning: .*/run holds 0, which ksmtuned did not write \(it wrote 1\): writing 1 ",
                     e.d.output()) == 1, e.d.output()
        # Someone writes exactly what ksmtuned would: nothing to say.
        outside(e, "pages_to_scan", 1000)
        assert count(r"^warning: ", e.d.output()) == 4, e.d.output()
    finally:
        e.close()
