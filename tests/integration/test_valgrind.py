# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned under valgrind memcheck through a scripted life: start-up, adjustments, failed writes and reads,
SIGUSR1, SIGHUP with good and bad configurations, libvirt connected and disconnected (libvirt's in-process
test driver, then a real libvirtd killed and restarted), SIGTERM. Zero errors, zero bytes definitely lost.

It runs on the plain build. KSMTUNED of a sanitizer build is instrumented by ASan, which valgrind cannot
run: that case is skipped, under CI too, since the plain build's run of this test covers it.
Root (a real libvirtd): suite 'real'."""

import os
import re
import shutil
import signal
import tempfile

import pytest

from ksmtest import (KSMTUNED, Daemon, asan_instrumented, ksm_values, make_ksm_dir, make_proc, meminfo_text, need_root,
                     read, replace, skip_or_fail, wait_for, write)


@pytest.fixture(autouse=True, scope="module")
def needs():
    if not KSMTUNED or not os.path.exists(KSMTUNED):
        pytest.fail(f"KSMTUNED ({KSMTUNED!r}) is not a file", pytrace=False)
    if asan_instrumented(KSMTUNED):
        # The one skip allowed under CI: ASan and valgrind cannot run together; the plain build runs this.
        pytest.skip(f"{KSMTUNED} is built with AddressSanitizer, which valgrind cannot run; "
                    "this test runs on the plain (non-sanitizer) build")
    if not shutil.which("valgrind"):
        skip_or_fail("valgrind is not installed")
    need_root("a real libvirtd")

GIB = 1024 * 1024
TOTAL = 16 * GIB
THRES = 3355443
SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")
WAIT = 60  # seconds: everything is ~20-50 times slower under memcheck; a failure bound, never waited out


class Valgrind(Daemon):
    """The daemon under memcheck; the report goes to its own file."""

    def __init__(self, args, workdir):
        self.report = os.path.join(workdir, "memcheck.log")
        cmd = ["valgrind", "--tool=memcheck", "--vgdb=no", "--leak-check=full", "--show-leak-kinds=definite",
               "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--num-callers=40",
               f"--log-file={self.report}"]
        if os.path.exists(SUPPRESSIONS):
            cmd.append(f"--suppressions={SUPPRESSIONS}")
        super().__init__(cmd + args)

    def memcheck(self):
        return read(self.report) if os.path.exists(self.report) else "(no report)"

    def finish(self):
        """SIGTERM, then: exit status 0 (99 would mean memcheck errors), and a clean report."""
        rc = self.stop(signal.SIGTERM, timeout=WAIT)
        report = self.memcheck()
        summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
        lost = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", report)
        print("     memcheck: " + "; ".join(line.split("== ", 1)[-1].strip() for line in report.splitlines()
                                            if "ERROR SUMMARY" in line or "definitely lost" in line
                                            or "in use at exit" in line), flush=True)
        assert rc == 0, f"exit status {rc}:\n{report}\n--- daemon output ---\n{self.output()[-4000:]}"
        assert summary and summary.group(1) == "0", report
        assert not lost or lost.group(1) == "0", report
        assert "Received SIGTERM" in self.output(), self.output()[-2000:]


def adjustments(d):
    """Those this test causes: KVM uevents are on (to run that source too), and any VM on the host sends them."""
    return len(re.findall(r"^adjustment #\d+ \((start-up|SIGUSR1|reload)\)", d.output(), re.M))


def wait_adjustment(d, n):
    assert wait_for(lambda: adjustments(d) >= n, WAIT, 0.1), f"no adjustment #{n}:\n{d.output()}"


def test_scripted_life():
    root = tempfile.mkdtemp(prefix="ksmtuned-valgrind-")
    ksm = make_ksm_dir(os.path.join(root, "ksm"), run=1)
    proc = make_proc(os.path.join(root, "proc"), meminfo_text(TOTAL, 10 * GIB),
                     [(4242, "qemu-system-x86", 2 * GIB, ["qemu-system-x86_64", "-m", "2048"]),
                      (4243, "bash", 4096, ["bash"]),
                      (4244, "kvm", 1 * GIB, ["kvm", "-enable-kvm"])])
    conf = os.path.join(root, "ksmtuned.conf")
    log = os.path.join(root, "ksmtuned.log")
    base = (f"KSM_MONITOR_INTERVAL=3600\nKSM_EVENT_SETTLE_MSEC=100\nDEBUG=1\nLOGFILE={log}\n"
            "KSM_GUEST_CMDLINE='-enable-kvm'\n")
    write(conf, base + "KSM_LIBVIRT_URI=test:///default\n")
    mi = os.path.join(proc, "meminfo")
    knob = os.path.join(ksm, "pages_to_scan")
    d = Valgrind([KSMTUNED, "--debug", "--config", conf, "--ksm-dir", ksm, "--proc", proc], root)
    try:
        wait_adjustment(d, 1)
        assert wait_for(lambda: "Connected to libvirt at test:///default" in d.output(), WAIT, 0.1), d.output()
        assert f"committed {3 * GIB} (2 guests)" in d.output(), d.output()
        assert ksm_values(ksm)["run"] == "0"
        n = 1

        def usr1():
            nonlocal n
            n += 1
            d.signal(signal.SIGUSR1)
            wait_adjustment(d, n)

        def hup():
            nonlocal n
            n += 1
            d.signal(signal.SIGHUP)
            wait_adjustment(d, n)

        replace(mi, meminfo_text(TOTAL, THRES - 1))
        usr1()
        usr1()
        assert ksm_values(ksm) == {"run": "1", "pages_to_scan": "600", "sleep_millisecs": "10"}

        # A refused write, then writing works again.
        os.unlink(knob)
        os.mkdir(knob)
        usr1()
        assert "Failed to write" in d.output()
        os.rmdir(knob)
        write(knob, "100\n")
        usr1()
        assert "works again" in d.output(), d.output()

        # /proc/meminfo malformed for a while: adjustments are skipped, then resume.
        replace(mi, "MemTotal: lots\n")
        d.signal(signal.SIGUSR1)
        assert wait_for(lambda: "Failed to read" in d.output(), WAIT, 0.1), d.output()
        replace(mi, meminfo_text(TOTAL, THRES - 1))
        usr1()
        assert "reads again" in d.output()

        # Reloads: libvirt off (disconnect), a bad file (kept), libvirt on again (a new connection), and the
        # LOGFILE reopened after a rotation.
        write(conf, base + "KSM_NPAGES_BOOST=200\nKSM_LIBVIRT_URI=\n")
        hup()
        write(conf, base + "KSM_NPAGES_BOOST=$(reboot)\nKSM_NPAGES_MAX=12abc\n")
        hup()
        assert "keeping the running configuration" in d.output(), d.output()
        os.rename(log, log + ".1")
        write(conf, base + "KSM_NPAGES_BOOST=200\nKSM_LIBVIRT_URI=test:///default\n")
        hup()
        assert wait_for(lambda: d.output().count("Connected to libvirt at test:///default") == 2, WAIT, 0.1), \
            d.output()
        # LOGFILE gets each line after the daemon's stderr does: wait for it there.
        assert wait_for(lambda: os.path.exists(log) and "(reload)" in read(log), WAIT, 0.1), d.output()
        usr1()
        assert d.alive()
        d.finish()
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_real_libvirtd(lv):
    """A real connection: a guest's start and stop, libvirtd killed, restarted, reconnected."""
    root = tempfile.mkdtemp(prefix="ksmtuned-valgrind-")
    ksm = make_ksm_dir(os.path.join(root, "ksm"), run=0)
    conf = os.path.join(root, "ksmtuned.conf")
    write(conf, "KSM_MONITOR_INTERVAL=3600\nKSM_EVENT_SETTLE_MSEC=100\nKSM_KVM_EVENTS=0\n"
                "KSM_LIBVIRT_URI=qemu:///system\n")
    d = Valgrind([KSMTUNED, "--debug", "--config", conf, "--ksm-dir", ksm], root)
    try:
        assert wait_for(lambda: "Connected to libvirt at qemu:///system" in d.output(), WAIT, 0.1), d.output()
        lv.create("ksmtuned-test-vg")
        assert wait_for(lambda: "(libvirt guest ksmtuned-test-vg started" in d.output(), WAIT, 0.1), d.output()
        lv.destroy("ksmtuned-test-vg")
        assert wait_for(lambda: re.search(r"\(libvirt guest ksmtuned-test-vg (stopped|shut down)", d.output()),
                        WAIT, 0.1), d.output()
        lv.kill_libvirtd()
        assert wait_for(lambda: "Lost the connection to libvirt" in d.output(), WAIT, 0.1), d.output()
        lv.start_libvirtd()
        assert wait_for(lambda: "(libvirt reconnected)" in d.output(), WAIT * 2, 0.1), d.output()
        assert d.alive()
        d.finish()
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)
