# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned's opt-in behaviour for today's kernels, on temporary KSM and /proc trees."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from ksmtest import (KSMTUNED, Daemon, ksm_values, make_ksm_dir, make_proc, meminfo_text, read, wait_for, write)

GIB = 1024 * 1024
TOTAL = 16 * GIB
THRES = 3355443
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TCK = os.sysconf("SC_CLK_TCK")
# A failure bound only: a passing test never waits for it, a slow machine (ASan, load) must not hit it.
DEADLINE = 60


def replace(path, text):
    """Write a fake kernel file in one rename, so that the daemon never reads it half written.

    (A candidate for ksmtest.py: every test that changes a file the running daemon reads needs it.)"""
    write(path + ".new", text)
    os.rename(path + ".new", path)


def wait_line(d, pattern, count=1):
    """The count-th line of the daemon's output that matches pattern, once there is one (or fail)."""
    rx = re.compile(rf"^.*{pattern}.*$", re.M)

    def found():
        lines = rx.findall(d.output())
        return lines[count - 1] if len(lines) >= count else None

    line = wait_for(found, DEADLINE)
    assert line, f"no line #{count} matching {pattern!r} within {DEADLINE} s:\n{d.output()}"
    return line


class Env:
    def __init__(self, conf="", free=10 * GIB, available=None, procs=(), **ksm):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-modern-")
        values = {"run": 1}
        values.update(ksm)
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), **values)
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(TOTAL, free, available=available), procs)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, "KSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n" + conf)

    def args(self, *extra):
        return [KSMTUNED, "--debug", "--config", self.conf, "--ksm-dir", self.ksm, "--proc", self.proc, *extra]

    def once(self):
        r = subprocess.run(self.args("--once"), capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return r.stderr

    def knob(self, name):
        return read(os.path.join(self.ksm, name)).strip()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def test_free_memory_available():
    # Cached looks free to the original (stop); MemAvailable says memory is short (run, boost).
    e = Env(free=1000, available=3000000)
    write(os.path.join(e.proc, "meminfo"), meminfo_text(TOTAL, 1000, cached=5000000, available=3000000))
    try:
        out = e.once()
        assert "free 5001000" in out and "-> stop" in out, out
        write(e.conf, read(e.conf) + "KSM_FREE_MEMORY=available\n")
        out = e.once()
        assert "free 3000000" in out and "-> start pages_to_scan 300" in out, out
        assert e.knob("run") == "1" and e.knob("pages_to_scan") == "300"
    finally:
        e.cleanup()


def test_advisor_owns_pages_to_scan():
    e = Env(free=1000, advisor_mode="none [scan-time]", pages_to_scan=777)
    try:
        out = e.once()
        assert "advisor" in out and e.knob("pages_to_scan") == "777", out
        assert e.knob("sleep_millisecs") == "10" and e.knob("run") == "1"
        assert "Failed" not in out, out
        write(os.path.join(e.ksm, "advisor_mode"), "[none] scan-time\n")
        out = e.once()
        assert e.knob("pages_to_scan") == "300", out
    finally:
        e.cleanup()


def test_config_knobs_applied():
    e = Env(conf="KSM_ADVISOR=scan-time\nKSM_ADVISOR_MAX_CPU=40\nKSM_ADVISOR_TARGET_SCAN_TIME=60\n"
                 "KSM_SMART_SCAN=0\nKSM_USE_ZERO_PAGES=yes\nKSM_MAX_PAGE_SHARING=128\n",
            advisor_mode="[none] scan-time", advisor_max_cpu=70, advisor_target_scan_time=200, smart_scan=1)
    try:
        out = e.once()
        assert e.knob("advisor_mode") == "scan-time", out
        assert e.knob("advisor_max_cpu") == "40" and e.knob("advisor_target_scan_time") == "60", out
        assert e.knob("smart_scan") == "0" and e.knob("use_zero_pages") == "1", out
        assert e.knob("max_page_sharing") == "128", out
        assert "Set smart_scan to 0 (was 1)" in out, out
        # Knobs this kernel lacks: one warning each, nothing else.
        os.unlink(os.path.join(e.ksm, "advisor_max_cpu"))
        out = e.once()
        assert out.count("KSM_ADVISOR_MAX_CPU is set, but this kernel has no") == 1, out
        # Keys left empty leave the kernel's values alone.
        write(e.conf, "KSM_LIBVIRT_URI=\nKSM_SMART_SCAN=\n")
        write(os.path.join(e.ksm, "smart_scan"), "1\n")
        e.once()
        assert e.knob("smart_scan") == "1"
    finally:
        e.cleanup()


def test_merge_across_nodes_unmerges_first():
    # 1000 pages merged; plenty of MemAvailable: unmerge (run=2), then change the knob, then run again.
    e = Env(conf="KSM_MERGE_ACROSS_NODES=0\nKSM_THRES_COEF=100\n", free=1000, available=8 * GIB,
            pages_shared=100, pages_sharing=1000, merge_across_nodes=1)
    try:
        out = e.once()
        assert "Unmerging" in out and e.knob("merge_across_nodes") == "0", out
        assert e.knob("run") == "1", out  # the adjustment after it starts KSM again
        # Not enough MemAvailable for the merged pages: refused with the reason, knob kept.
        e2 = Env(conf="KSM_MERGE_ACROSS_NODES=0\n", available=1000, pages_shared=100, pages_sharing=10000,
                 merge_across_nodes=1)
        try:
            out = e2.once()
            assert "Cannot set KSM_MERGE_ACROSS_NODES=0" in out and "MemAvailable" in out, out
            assert e2.knob("merge_across_nodes") == "1"
        finally:
            e2.cleanup()
    finally:
        e.cleanup()


def test_stop_mode_unmerge():
    sharing = 50000  # about 195 MiB merged
    e = Env(conf="KSM_STOP_MODE=unmerge\n", available=9 * GIB, pages_sharing=sharing)
    try:
        out = e.once()
        assert "-> stop and unmerge" in out and e.knob("run") == "2", out
        assert "unmerged" in out, out
        # Already unmerged: left at 2, not rewritten to 0.
        e.once()
        assert e.knob("run") == "2"
        # Memory could not take them back: stop only, say why once.
        write(os.path.join(e.ksm, "run"), "1\n")
        write(os.path.join(e.proc, "meminfo"), meminfo_text(TOTAL, 3500000, available=3500000))
        out = e.once()
        assert "unmerge refused" in out and e.knob("run") == "0", out
        assert "Not unmerging" in out, out
    finally:
        e.cleanup()


def fake_ksmd(proc, ticks):
    os.makedirs(os.path.join(proc, "37"), exist_ok=True)
    replace(os.path.join(proc, "37", "stat"),
            f"37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 {ticks} 0 0 0 25 5 1 0 5 0 0 18446744073709551615\n")


def test_cpu_budget():
    # ksmd's share is the CPU time it used over the time between two adjustments, both as the daemon measures
    # them. The figures make the verdict hold for any interval the daemon could measure, however slow the
    # machine; the test checks the share the daemon logged.
    e = Env(conf="KSM_CPU_BUDGET=10\nKSM_MONITOR_INTERVAL=3600\n", free=1000)
    fake_ksmd(e.proc, 0)
    try:
        with Daemon(e.args()) as d:
            wait_line(d, r"adjustment #1 ")
            assert e.knob("pages_to_scan") == "300", d.output()
            # A million seconds of ksmd CPU since: over 10 % for any interval under ten million seconds.
            fake_ksmd(e.proc, 10**6 * TCK)
            d.signal(signal.SIGUSR1)
            line = wait_line(d, r"adjustment #2 ")
            m = re.search(r" ksmd (\d+\.\d)% ", line)
            assert m and float(m.group(1)) > 10, line
            assert "decay: ksmd over its CPU budget" in line, line
            assert e.knob("pages_to_scan") == "250", d.output()
            # ksmd idle since: 0 % over any interval, so boost.
            d.signal(signal.SIGUSR1)
            line = wait_line(d, r"adjustment #3 ")
            assert " ksmd 0.0% " in line and "(boost)" in line, line
            assert e.knob("pages_to_scan") == "550", d.output()
    finally:
        e.cleanup()


def test_committed_sources():
    procs = [(600, "qemu-kvm", 4 * GIB, ["qemu-kvm"])]
    e = Env(procs=procs)
    write(os.path.join(e.proc, "600", "smaps_rollup"), "00-ff ---p 0 00:00 0 [rollup]\nRss: 4194304 kB\nPss: 1048576 kB\n")
    write(os.path.join(e.proc, "600", "ksm_merging_pages"), f"{GIB // PAGE_KB}\n")
    try:
        assert "committed 4194304 (1 guests)" in e.once()
        write(e.conf, read(e.conf) + "KSM_COMMITTED=pss\n")
        assert "committed 1048576 (1 guests)" in e.once()
        write(e.conf, read(e.conf) + "KSM_COMMITTED=rss-minus-merged\n")
        assert "committed 3145728 (1 guests)" in e.once()
        os.unlink(os.path.join(e.proc, "600", "ksm_merging_pages"))
        out = e.once()
        assert "committed 4194304 (1 guests)" in out and "counting their RSS instead" in out, out
    finally:
        e.cleanup()


def test_metrics_file():
    import promparse
    e = Env(conf="KSM_METRICS_FILE={m}\n", free=1000, pages_shared=10, pages_sharing=250, full_scans=7,
            general_profit=-4096)
    metrics = os.path.join(e.dir, "ksmtuned.prom")
    write(e.conf, read(e.conf).replace("{m}", metrics))
    fake_ksmd(e.proc, 1234)
    try:
        with Daemon(e.args()) as d:
            assert wait_for(lambda: os.path.exists(metrics), DEADLINE), d.output()
            d.signal(signal.SIGUSR1)
            wait_line(d, r"adjustment #2 ")
            # The file is written after the adjustment's line, replaced in one rename: wait for the new one.
            assert wait_for(lambda: 'reason="signal"} 1' in read(metrics), DEADLINE), read(metrics)
            fams = promparse.parse(read(metrics), strict_names=True)

            def value(name, **labels):
                [v] = [s[2] for s in fams[name]["samples"] if s[1] == labels]
                return v

            assert value("ksmtuned_memory_free_bytes") == 1000 * 1024
            assert value("ksmtuned_memory_threshold_bytes") == THRES * 1024
            assert value("ksmtuned_memory_total_bytes") == TOTAL * 1024
            assert value("ksmtuned_ksm_pages_to_scan") == 600
            assert value("ksmtuned_ksm_sleep_seconds") == 0.01
            assert value("ksmtuned_ksm_run") == 1 and value("ksmtuned_decision_run") == 1
            assert value("ksmtuned_ksm_pages_sharing") == 250
            assert value("ksmtuned_ksm_saved_bytes") == 250 * PAGE_KB * 1024
            assert value("ksmtuned_ksm_full_scans_total") == 7
            assert value("ksmtuned_ksm_general_profit_bytes") == -4096
            assert value("ksmtuned_ksmd_cpu_seconds_total") == round(1234 / TCK, 2)
            assert value("ksmtuned_adjustments_total", reason="start-up") == 1
            assert value("ksmtuned_adjustments_total", reason="signal") == 1
            assert fams["ksmtuned_adjustments_total"]["type"] == "counter"
            assert "ksmtuned_libvirt_connected" not in fams  # libvirt not watched here
            assert not [f for f in os.listdir(e.dir) if ".tmp." in f]  # no temporary file left behind
            # An unwritable directory: logged once, the daemon carries on.
            shutil.rmtree(e.dir + "/gone", ignore_errors=True)
            write(e.conf, read(e.conf).replace(metrics, e.dir + "/gone/ksmtuned.prom"))
            d.signal(signal.SIGHUP)
            wait_line(d, r"adjustment #3 \(reload\)")
            d.signal(signal.SIGUSR1)
            wait_line(d, r"adjustment #4 ")
            d.signal(signal.SIGUSR1)
            # By #5's line, the writes of #3 and #4 have both failed (each comes right after its line).
            wait_line(d, r"adjustment #5 ")
            assert d.output().count("Failed to write the metrics") == 1, d.output()
            assert d.alive()
    finally:
        e.cleanup()


CHECK = r"adaptive check: \d+ pages/s \(([^)]*)\) -> pages_to_scan (\d+) sleep_millisecs (\d+); next check in ([\d.]+) s"


def ksm_update(d, ksm, **values):
    """Change several of KSM's counters at once: the daemon, stopped meanwhile, never sees half of them."""
    d.signal(signal.SIGSTOP)
    try:
        for k, v in values.items():
            replace(os.path.join(ksm, k), f"{v}\n")
    finally:
        d.signal(signal.SIGCONT)


def test_adaptive_policy():
    # 200000 pages KSM has seen twice (unshared: in the unstable tree), none merged yet, none waiting for
    # another look (pages_volatile 0: else the policy would go round to them at speed).
    e = Env(conf="KSM_POLICY=adaptive\nKSM_MONITOR_INTERVAL=3600\n", free=1000, full_scans=0, pages_scanned=0,
            pages_unshared=200000)
    try:
        with Daemon(e.args()) as d:
            wait_line(d, r"adjustment #1 ")
            assert "adaptive: 1000000 pages/s, KSM started" in d.output(), d.output()
            assert ksm_values(e.ksm) == {"run": "1", "pages_to_scan": "10000", "sleep_millisecs": "10"}
            # The fastest rate, whatever scanning yields, until ksmd has gone round the 200000 pages once.
            replace(os.path.join(e.ksm, "pages_scanned"), "150000\n")
            wait_line(d, r"adaptive check: .*\(new memory not yet covered by a round of the scan: scanning fast\)")
            # Round: from then on, every check judges what was scanned since the previous one. 0.5 % of it
            # merged: a quarter of the rate per check, down to the floor (KSM_ADAPTIVE_MIN_RATE 2000 pages/s:
            # 100 pages every 50 ms), mid-scan (full_scans stays at 0). A check that finds nothing scanned holds.
            seen = []
            scanned, sharing = 200000, 0
            for n in range(1, 6):
                scanned += 100000
                # The first window began at 0 or 150000 pages scanned, as the last check saw them: 1000 of
                # 150000 or 300000 is 0.67 % or 0.33 %, a quarter either way (under 0.25 %: the floor at once).
                sharing += 1000 if n == 1 else 500
                ksm_update(d, e.ksm, pages_scanned=scanned, pages_sharing=sharing, pages_shared=1,
                           pages_unshared=200000 - sharing - 1)
                line = wait_line(d, r"adaptive check: .*\(scanning merges too little: backing off\)", n)
                _, pages, sleep, _ = re.search(CHECK, line).groups()
                seen.append(f"{pages}/{sleep}")
                # The check logs, then writes: wait for the knobs it logged.
                assert wait_for(lambda: (e.knob("pages_to_scan"), e.knob("sleep_millisecs")) == (pages, sleep),
                                DEADLINE), (line, ksm_values(e.ksm), d.output())
            assert seen == ["2500/10", "625/10", "156/10", "100/25", "100/50"], (seen, d.output())
            # Scanning finds new volatile pages: fast again at the next check.
            ksm_update(d, e.ksm, pages_scanned=scanned + 20000, pages_volatile=131072)
            wait_line(d, r"adaptive check: .*\(new mergeable pages: scanning fast\)")
            assert wait_for(lambda: e.knob("pages_to_scan") == "10000", DEADLINE), d.output()
            # KSM stopped by the memory decision: the policy's checks stop writing.
            replace(os.path.join(e.proc, "meminfo"), meminfo_text(TOTAL, 10 * GIB))
            d.signal(signal.SIGUSR1)
            wait_line(d, r"adjustment #2 \(SIGUSR1\).* -> stop")
            assert e.knob("run") == "0", d.output()
            stopped_at = time.monotonic()
            before_stop = d.output().split("adjustment #2 (SIGUSR1)", 1)[0]
            # The last check before the stop armed the next one this far ahead; had the stop left it armed, it
            # would be due by then.
            due = float(re.findall(CHECK, before_stop)[-1][3])
            replace(os.path.join(e.ksm, "pages_to_scan"), "42\n")
            replace(os.path.join(e.ksm, "full_scans"), "99\n")
            wait_for(lambda: time.monotonic() > stopped_at + due, DEADLINE)
            # Barrier: an adjustment runs at idle priority, after any check that is due. So by its line, every
            # check armed before the stop has either run or been cancelled.
            d.signal(signal.SIGUSR1)
            wait_line(d, r"adjustment #3 \(SIGUSR1\).* -> stop")
            after_stop = d.output().split("adjustment #2 (SIGUSR1)", 1)[1]
            assert "adaptive check" not in after_stop, d.output()
            assert e.knob("pages_to_scan") == "42", d.output()
    finally:
        e.cleanup()
