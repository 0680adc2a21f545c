# SPDX-License-Identifier: GPL-2.0-or-later
"""The built ksmctl binary against temporary KSM and /proc trees: verbs, options, messages, exit statuses."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ksmtest import KSMCTL, make_ksm_dir, make_proc, meminfo_text, read, wait_for, write  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def needs():
    if not KSMCTL or not os.access(KSMCTL, os.X_OK):
        pytest.fail(f"KSMCTL={KSMCTL!r} is not an executable", pytrace=False)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
USAGE = "Usage: ksmctl [OPTIONS] {start|stop|status|unmerge|guests}"

# Every key "ksmctl status --json" may print, as documented in ksmctl(8): always present ...
ALWAYS = ("run", "running", "pages_to_scan", "sleep_millisecs", "scan_pages_per_sec", "pages_shared",
          "pages_sharing", "pages_unshared", "pages_volatile", "full_scans", "page_size", "saved_bytes", "sample_ms")
# ... and present exactly when the kernel has the knob of that name.
OPTIONAL = ("max_kernel_pages", "max_page_sharing", "merge_across_nodes", "use_zero_pages", "stable_node_chains",
            "stable_node_dups", "pages_scanned", "pages_skipped", "ksm_zero_pages", "general_profit", "smart_scan",
            "advisor_mode", "advisor_max_cpu", "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
            "advisor_target_scan_time")
# ... and present when ksmd was found in /proc (ksmd_cpu_percent: and its CPU time sampled, --sample=MS > 0).
KSMD_KEYS = ("ksmd_pid", "ksmd_cpu_seconds", "ksmd_cpu_percent")
# Knobs of Linux 6.18 that make_ksm_dir does not create.
NEW_KNOBS = {"pages_scanned": "4242", "pages_skipped": "17", "ksm_zero_pages": "3", "general_profit": "-4096",
             "smart_scan": "1", "advisor_mode": "[none] scan-time", "advisor_max_cpu": "70",
             "advisor_min_pages_to_scan": "500", "advisor_max_pages_to_scan": "30000",
             "advisor_target_scan_time": "200", "stable_node_chains_prune_millisecs": "2000"}


def ksmctl(*args, env_extra=None, env_drop=("KSM_MAX_KERNEL_PAGES",)):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(env_extra or {})
    return subprocess.run([KSMCTL, *args], capture_output=True, text=True, env=env, timeout=30)


class Tree:
    """A temporary KSM directory and /proc directory, removed afterwards."""

    def __init__(self, **knobs):
        self.root = tempfile.mkdtemp(prefix="test-ksmctl-cli.")
        self.ksm = make_ksm_dir(os.path.join(self.root, "ksm"), **knobs)
        self.proc = os.path.join(self.root, "proc")

    def knob(self, name):
        return read(os.path.join(self.ksm, name)).strip()

    def set(self, name, value):
        write(os.path.join(self.ksm, name), f"{value}\n")

    def put_stat(self, pid, comm, ppid, utime, stime):
        """/proc/PID/stat as Linux 6.18 writes it, replaced in one rename so no reader sees half of it."""
        flags = 2129984 if ppid == 2 else 4194560  # PF_KTHREAD, or a user process
        line = (f"{pid} ({comm}) S {ppid} 0 0 0 -1 {flags} 0 0 0 0 {utime} {stime} 0 0 25 5 1 0 9 0 0 "
                "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
        path = os.path.join(self.proc, str(pid), "stat")
        write(path + ".new", line)
        os.rename(path + ".new", path)

    def make_ksmd(self, utime=1234, stime=56):
        """A /proc with init, kthreadd, ksmd as PID 37 and a user process that calls itself ksmd."""
        self.put_stat(1, "systemd", 0, 500, 700)
        self.put_stat(2, "kthreadd", 0, 0, 0)
        self.put_stat(12, "ksmd", 1, 9000, 9000)
        self.put_stat(37, "ksmd", 2, utime, stime)
        return self.proc

    def no_ksmd(self):
        """A /proc without ksmd: init and the user process named ksmd only, as in a container."""
        self.put_stat(1, "systemd", 0, 500, 700)
        self.put_stat(12, "ksmd", 1, 9000, 9000)
        return self.proc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.root, ignore_errors=True)
        return False


def usage_error(p):
    assert p.returncode == 1, p
    assert p.stderr.startswith("Usage:"), p.stderr
    assert p.stderr.splitlines()[0] == USAGE, p.stderr
    assert p.stdout == "", p.stdout


def test_usage_errors():
    with Tree() as t:
        for args in ([], ["foo"], ["START"], ["start", "stop"], ["--bogus", "start"], ["-x", "status"],
                     ["-d"], ["--proc"], ["start", "--json"], ["stop", "--force"], ["status", "-f"],
                     ["--help=1"], ["-d", "", "status"], ["--sample"], ["status", "--sample=abc"],
                     ["status", "--sample="], ["status", "--sample=-1"], ["status", "--sample=10001"],
                     ["status", "--sample=1.5"], ["status", "--sample=0x10"],
                     ["status", "--sample=99999999999999999999"],
                     ["start", "--sample=0"], ["stop", "--sample=500"], ["unmerge", "--sample", "10"]):
            p = ksmctl(*args)
            usage_error(p)
        # Nothing was touched.
        assert t.knob("run") == "0"


def test_help():
    for opt in ("-h", "--help"):
        p = ksmctl(opt)
        assert p.returncode == 0, p
        assert p.stdout.startswith(USAGE + "\n"), p.stdout
        for word in ("start", "stop", "status", "unmerge", "--ksm-dir", "--proc", "--force", "--json",
                     "--sample=MS", "--verbose", "--version", "KSM_MAX_KERNEL_PAGES", "Exit status"):
            assert word in p.stdout, word
        assert p.stderr == ""
    # Help wins over the rest, even a bad command.
    assert ksmctl("bogus", "--help").returncode == 0


def test_version():
    config = os.path.join(os.environ.get("BUILD_ROOT", ""), "build-config.h")
    version = None
    if os.path.exists(config):
        with open(config) as f:
            version = [line.split('"')[1] for line in f if "PACKAGE_VERSION" in line][0]
    for opt in ("-V", "--version"):
        p = ksmctl(opt)
        assert p.returncode == 0 and p.stderr == "", p
        assert re.fullmatch(r"ksmctl [0-9][0-9.]*\n", p.stdout), p.stdout
        if version:
            assert p.stdout == f"ksmctl {version}\n", p.stdout


def test_start_stop():
    with Tree() as t:
        p = ksmctl("-d", t.ksm, "start")
        assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p
        assert t.knob("run") == "1"
        assert not os.path.exists(os.path.join(t.ksm, "max_kernel_pages"))
        p = ksmctl("--ksm-dir", t.ksm, "stop")
        assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p
        assert t.knob("run") == "0"
        # Options after the command, "--ksm-dir=DIR" and a trailing slash work too.
        p = ksmctl("start", f"--ksm-dir={t.ksm}/")
        assert p.returncode == 0, p
        assert t.knob("run") == "1"


def test_start_no_limit_verbose():
    with Tree() as t:
        p = ksmctl("-v", "-d", t.ksm, "start", env_extra={"KSM_MAX_KERNEL_PAGES": "100"})
        assert p.returncode == 0, p
        assert f"No {t.ksm}/max_kernel_pages" in p.stderr, p.stderr
        assert "error" not in p.stderr.lower() and "fail" not in p.stderr.lower(), p.stderr
        assert f"Wrote 1 to {t.ksm}/run" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(t.ksm, "max_kernel_pages"))
        # Quiet without --verbose.
        p = ksmctl("-d", t.ksm, "start")
        assert p.stderr == "", p.stderr


def test_start_limit_env():
    half = os.sysconf("SC_PHYS_PAGES") // 2
    table = [(None, half), ("", half), ("0", 0), ("123", 123), ("0x10", 16), ("010", 8), ("-5", half),
             ("12abc", half), (" 7", 7), ("7 ", half), ("99999999999999999999", half)]
    with Tree(max_kernel_pages=2000) as t:
        for value, expect in table:
            t.set("run", 0)
            t.set("max_kernel_pages", 2000)
            extra = {} if value is None else {"KSM_MAX_KERNEL_PAGES": value}
            p = ksmctl("-d", t.ksm, "start", env_extra=extra)
            assert p.returncode == 0, (value, p)
            assert t.knob("max_kernel_pages") == str(expect), (value, t.knob("max_kernel_pages"), expect)
            assert t.knob("run") == "1"


def test_write_error_names_path():
    with Tree() as t:
        os.unlink(os.path.join(t.ksm, "run"))
        os.mkdir(os.path.join(t.ksm, "run"))
        for verb, value in (("start", 1), ("stop", 0), ("unmerge", 2)):
            p = ksmctl("-d", t.ksm, "--proc", t.proc, verb, "--force" if verb == "unmerge" else "-v")
            assert p.returncode == 1, p
            assert f"ksmctl: Failed to write {value} to {t.ksm}/run: Is a directory" in p.stderr, p.stderr
    with Tree(max_kernel_pages=2000) as t:
        os.unlink(os.path.join(t.ksm, "max_kernel_pages"))
        os.mkdir(os.path.join(t.ksm, "max_kernel_pages"))
        p = ksmctl("-d", t.ksm, "start", env_extra={"KSM_MAX_KERNEL_PAGES": "77"})
        assert p.returncode == 1, p
        assert f"Failed to write 77 to {t.ksm}/max_kernel_pages: Is a directory" in p.stderr, p.stderr
        assert t.knob("run") == "0"
    with Tree() as t:
        os.unlink(os.path.join(t.ksm, "run"))
        os.symlink("/dev/full", os.path.join(t.ksm, "run"))
        p = ksmctl("-d", t.ksm, "stop")
        assert p.returncode == 1, p
        assert f"Failed to write 0 to {t.ksm}/run: No space left on device" in p.stderr, p.stderr


def test_missing_dir():
    with Tree() as t:
        missing = os.path.join(t.root, "nonexistent")
        for verb in ("start", "stop", "status", "unmerge"):
            p = ksmctl("-d", missing, verb)
            assert p.returncode == 1, p
            assert f"Failed to open {missing}: No such file or directory" in p.stderr, p.stderr
        os.unlink(os.path.join(t.ksm, "run"))
        p = ksmctl("-d", t.ksm, "stop")
        assert p.returncode == 1
        assert f"Failed to write 0 to {t.ksm}/run: No such file or directory" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(t.ksm, "run"))


def ksmd_ticks(t, pid=37):
    """utime + stime of PID in the fake /proc, or None when it is not there or not ksmd."""
    try:
        fields = read(os.path.join(t.proc, str(pid), "stat")).rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12]) if fields[1] == "2" else None


def check_json(t, doc, sample_ms=500):
    """Every documented key is there exactly when it should be, and holds what the files hold."""
    for key in ALWAYS:
        assert key in doc, key
    for key in doc:
        assert key in ALWAYS or key in OPTIONAL or key in KSMD_KEYS, f"undocumented key {key}"
    assert type(doc["sample_ms"]) is int and doc["sample_ms"] == sample_ms, doc["sample_ms"]
    ticks = ksmd_ticks(t)
    if ticks is None:
        assert not any(k in doc for k in KSMD_KEYS), doc
    else:
        assert doc["ksmd_pid"] == 37 and type(doc["ksmd_pid"]) is int, doc
        assert type(doc["ksmd_cpu_seconds"]) is float, doc
        assert abs(doc["ksmd_cpu_seconds"] - ticks / CLK_TCK) < 1e-9, (doc["ksmd_cpu_seconds"], ticks)
        assert ("ksmd_cpu_percent" in doc) == (sample_ms > 0), doc
        if sample_ms:
            assert type(doc["ksmd_cpu_percent"]) is float and doc["ksmd_cpu_percent"] >= 0, doc
    for key in OPTIONAL:
        path = os.path.join(t.ksm, key)
        assert (key in doc) == os.path.exists(path), key
        if key in doc:
            raw = read(path).strip()
            if key == "advisor_mode":
                assert doc[key] == raw.split("[", 1)[1].split("]", 1)[0], (key, doc[key], raw)
            else:
                assert type(doc[key]) is int and doc[key] == int(raw), (key, doc[key], raw)
    for key in ALWAYS[:]:
        if key in ("running", "scan_pages_per_sec", "page_size", "saved_bytes", "sample_ms"):
            continue
        assert type(doc[key]) is int and doc[key] == int(t.knob(key)), key
    assert doc["running"] is (doc["run"] == 1)
    assert doc["page_size"] == PAGE_SIZE
    sleep = doc["sleep_millisecs"]
    assert doc["scan_pages_per_sec"] == (doc["pages_to_scan"] * 1000 // sleep if sleep else None)
    assert doc["saved_bytes"] == (doc["pages_sharing"] + doc.get("ksm_zero_pages", 0)) * PAGE_SIZE


def test_status_json():
    knobs = dict(NEW_KNOBS, run=1, pages_to_scan=1250, sleep_millisecs=10, pages_shared=800,
                 pages_sharing=25000, pages_unshared=3000, pages_volatile=42, full_scans=7)
    with Tree(**knobs) as t:
        t.make_ksmd()
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--json", "--sample=20")
        assert p.returncode == 0 and p.stderr == "", p
        assert p.stdout.count("\n") == 1 and p.stdout.endswith("}\n"), p.stdout
        doc = json.loads(p.stdout)
        check_json(t, doc, 20)
        assert doc["ksmd_cpu_percent"] == 0.0, doc  # the fake ksmd's time stands still
        assert doc["scan_pages_per_sec"] == 125000
        assert doc["general_profit"] == -4096
        assert doc["advisor_mode"] == "none"
        assert doc["saved_bytes"] == 25003 * PAGE_SIZE
        assert doc["running"] is True


def test_status_json_old_kernel():
    # 2.6.32: no optional knob but max_kernel_pages.
    drop = {k: None for k in ("merge_across_nodes", "max_page_sharing", "stable_node_chains", "stable_node_dups",
                              "use_zero_pages")}
    with Tree(max_kernel_pages=1000, sleep_millisecs=0, run=2, **drop) as t:
        p = ksmctl("status", "--json", "-d", t.ksm, "--proc", t.no_ksmd(), "--sample", "0")
        assert p.returncode == 0, p
        doc = json.loads(p.stdout)
        check_json(t, doc, 0)
        assert set(doc) == set(ALWAYS) | {"max_kernel_pages"}, sorted(doc)
        assert doc["scan_pages_per_sec"] is None
        assert doc["running"] is False


def test_status_text():
    with Tree(**dict(NEW_KNOBS, run=1, pages_sharing=512)) as t:
        p = ksmctl("-d", t.ksm, "--proc", t.make_ksmd(), "status", "--sample=0")
        assert p.returncode == 0 and p.stderr == "", p
        lines = dict(line.split(":", 1) for line in p.stdout.splitlines())
        assert list(lines)[:2] == ["ksmd", "ksmd CPU"], list(lines)
        assert lines["ksmd"].strip().startswith("running (run = 1)"), lines
        assert lines["ksmd CPU"].strip() == f"{1290 // CLK_TCK}.{1290 % CLK_TCK * 100 // CLK_TCK:02d} s in total " \
            "(PID 37)", lines["ksmd CPU"]
        assert lines["pages_to_scan"].strip() == "100"
        assert lines["sleep_millisecs"].strip() == "20"
        assert lines["scan rate"].strip().startswith("up to 5000 pages/s ("), lines["scan rate"]
        assert lines["pages_sharing"].strip() == "512"
        assert lines["advisor"].strip() == "none (scan-time would use: target scan time 200 s, max CPU 70%, " \
            "pages_to_scan 500..30000)", lines["advisor"]
        assert lines["general_profit"].strip().endswith("(-4096 bytes)")
        assert f"({515 * PAGE_SIZE} bytes" in lines["memory saved"], lines["memory saved"]
        # The scan-time advisor: it owns pages_to_scan, and status says so.
        t.set("advisor_mode", "none [scan-time]")
        t.set("pages_to_scan", 1234)
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--sample=0")
        assert p.returncode == 0 and p.stderr == "", p
        lines = dict(line.split(":", 1) for line in p.stdout.splitlines())
        assert "\nadvisor:             scan-time (target scan time 200 s, max CPU 70%, pages_to_scan 500..30000): " \
            "the kernel sets pages_to_scan\n" in p.stdout, p.stdout
        assert lines["pages_to_scan"].strip() == "1234 (set by the scan-time advisor; the kernel refuses writes)"
    with Tree(merge_across_nodes=None) as t:
        p = ksmctl("-d", t.ksm, "--proc", t.no_ksmd(), "status")
        assert p.returncode == 0 and p.stderr == "", p
        assert "stopped (run = 0)" in p.stdout
        assert "\nksmd CPU:            unknown: ksmd not found (no KSM in this kernel, or kernel threads are " \
            "hidden, as in a container)\n" in p.stdout, p.stdout
        for absent in ("merge_across_nodes", "advisor", "general_profit", "smart_scan", "ksm_zero_pages"):
            assert absent not in p.stdout, absent


# Syscall numbers of nanosleep and clock_nanosleep, for /proc/PID/syscall.
NANOSLEEP = {"x86_64": (35, 230), "aarch64": (101, 115), "i686": (162, 267), "ppc64le": (162, 248),
             "s390x": (162, 262), "riscv64": (101, 115)}


def in_nanosleep(pid):
    """Whether the (single-threaded) process is asleep in nanosleep(2) now: ksmctl's window, its only sleep."""
    try:
        wchan = read(f"/proc/{pid}/wchan")
        call = read(f"/proc/{pid}/syscall").split()[0]
    except (OSError, IndexError):
        return False
    if "nanosleep" in wchan:
        return True
    return call.isdigit() and int(call) in NANOSLEEP.get(os.uname().machine, ())


def test_status_ksmd_cpu():
    """--sample=MS: ksmd's CPU time read twice, MS apart; the fake ksmd uses 1.5 s of CPU in a 3 s window."""
    with Tree(**NEW_KNOBS) as t:
        # The fake ksmd's CPU time must change inside ksmctl's window, after its first read, before its second:
        # wait until ksmctl sleeps (it has read once), change it, and check it was still asleep (it has not
        # read again). A busy machine that delays us past its wake-up only costs another try.
        for attempt in range(5):
            t.make_ksmd(utime=1000, stime=200)
            start = time.monotonic()
            proc = subprocess.Popen([KSMCTL, "-d", t.ksm, "--proc", t.proc, "status", "--json", "--sample=3000"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                assert wait_for(lambda: in_nanosleep(proc.pid) or proc.poll() is not None, 60, 0.005), \
                    "ksmctl never slept"
                t.put_stat(37, "ksmd", 2, 1000 + CLK_TCK, 200 + CLK_TCK // 2)
                in_window = in_nanosleep(proc.pid)
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            elapsed = time.monotonic() - start
            if in_window:
                break
            print(f"     try {attempt + 1}: ksmctl woke before the change, again", flush=True)
        assert in_window, "ksmctl's window was never caught"
        assert proc.returncode == 0 and err == "", (proc.returncode, err)
        doc = json.loads(out)
        check_json(t, doc, 3000)
        # 1.5 s of CPU over a window of at least 3 s and at most as long as ksmctl ran: 50% or a bit less.
        cpu = (CLK_TCK + CLK_TCK // 2) / CLK_TCK
        assert elapsed >= 3.0, elapsed
        assert cpu / elapsed * 100 - 0.01 <= doc["ksmd_cpu_percent"] <= cpu / 3.0 * 100 + 0.01, \
            (doc["ksmd_cpu_percent"], elapsed)

        # The same in words.
        t.make_ksmd(utime=1000, stime=200)
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--sample=100")
        assert p.returncode == 0 and p.stderr == "", p
        want = f"{1200 // CLK_TCK}.{1200 % CLK_TCK * 100 // CLK_TCK:02d}"
        assert f"\nksmd CPU:            0.0% of one CPU over 100 ms, {want} s in total (PID 37)\n" in p.stdout, \
            p.stdout


def test_status_ksmd_not_found():
    """No ksmd (a container, or no KSM): said, not an error, and no waiting for a sample of nothing."""
    with Tree(**NEW_KNOBS) as t:
        t.no_ksmd()
        start = time.monotonic()
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--json", "--sample=10000")
        # Waiting the 10 s it was asked for would take 10 s at least, on any machine.
        assert time.monotonic() - start < 10, "ksmctl waited for a ksmd it did not find"
        assert p.returncode == 0 and p.stderr == "", p
        doc = json.loads(p.stdout)
        check_json(t, doc, 10000)
        assert not any(k in doc for k in KSMD_KEYS), doc
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "-v")
        assert p.returncode == 0, p
        assert f"No ksmd in {t.proc}" in p.stderr and "ailed" not in p.stderr, p.stderr
        # The PID is there but is a user process now, or a kernel thread of another name.
        t.put_stat(37, "ksmd", 1, 5, 5)
        t.put_stat(38, "kswapd0", 2, 5, 5)
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--json", "--sample=0")
        assert p.returncode == 0 and p.stderr == "", p
        assert not any(k in json.loads(p.stdout) for k in KSMD_KEYS), p.stdout


def test_status_ksmd_unreadable():
    """A --proc that cannot be read: a warning, and the rest of the status all the same."""
    with Tree(**NEW_KNOBS) as t:
        missing = os.path.join(t.root, "nonexistent")
        for args in (["--json"], []):
            p = ksmctl("-d", t.ksm, "--proc", missing, "status", *args)
            assert p.returncode == 0, p
            assert p.stderr == f"ksmctl: Failed to read ksmd's CPU time in {missing}: No such file or directory, " \
                "ignoring\n", p.stderr
            if args:
                doc = json.loads(p.stdout)
                check_json(t, doc)
            else:
                assert "ksmd CPU:            unknown" in p.stdout and "pages_sharing:" in p.stdout, p.stdout
        # A stat that cannot be parsed is no ksmd's.
        t.make_ksmd()
        write(os.path.join(t.proc, "37", "stat"), "37 (ksmd) S 2 garbage\n")
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "status", "--sample=0")
        assert p.returncode == 0 and p.stderr == "", p
        assert "ksmd CPU:            unknown: ksmd not found" in p.stdout, p.stdout


def test_status_sample_option():
    """--sample takes 0 to 10000, as "--sample=MS" or "--sample MS", before or after the command."""
    with Tree(**NEW_KNOBS) as t:
        t.make_ksmd()
        for args, ms in ((["--sample=0"], 0), (["--sample", "0"], 0), (["--sample=007"], 7), ([], 500),
                         (["--sample=1", "--sample=2"], 2)):
            p = ksmctl(*args, "-d", t.ksm, "--proc", t.proc, "status", "--json")
            assert p.returncode == 0 and p.stderr == "", (args, p)
            check_json(t, json.loads(p.stdout), ms)
        # 10000, the most, is no usage error (with no ksmd there is no waiting for it).
        empty = os.path.join(t.root, "empty")
        os.mkdir(empty)
        p = ksmctl("-d", t.ksm, "--proc", empty, "status", "--json", "--sample=10000")
        assert p.returncode == 0 and p.stderr == "", p
        assert json.loads(p.stdout)["sample_ms"] == 10000, p.stdout


def test_status_errors():
    with Tree(full_scans=None) as t:
        p = ksmctl("-d", t.ksm, "status")
        assert p.returncode == 1 and p.stdout == "", p
        assert f"Failed to read {t.ksm}/full_scans: No such file or directory" in p.stderr, p.stderr
    with Tree(general_profit="lots") as t:
        p = ksmctl("-d", t.ksm, "status", "--json")
        assert p.returncode == 1 and p.stdout == "", p
        assert f"Failed to read {t.ksm}/general_profit: not a number" in p.stderr, p.stderr
    with Tree() as t, open("/dev/full", "w") as full:
        p = subprocess.run([KSMCTL, "-d", t.ksm, "status"], stdout=full, stderr=subprocess.PIPE, text=True)
        assert p.returncode == 1, p
        assert "No space left on device" in p.stderr, p.stderr


def test_status_without_root():
    """status only reads: it works for an unprivileged user (nobody)."""
    if os.geteuid() != 0:
        return  # already unprivileged: the other tests cover it
    with Tree(**NEW_KNOBS) as t:
        os.chmod(t.root, 0o755)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KSMCTL, "-d", t.ksm,
                            "--proc", t.make_ksmd(), "status", "--json", "--sample=10"], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0 and p.stderr == "", p
        check_json(t, json.loads(p.stdout), 10)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KSMCTL, "-d", t.ksm,
                            "start"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p
        assert f"Failed to write 1 to {t.ksm}/run: Permission denied" in p.stderr, p.stderr


def test_unmerge():
    # 1000 merged pages need 1000 pages of memory to unmerge.
    need_kb = 1000 * PAGE_SIZE // 1024
    with Tree(run=1, pages_sharing=1000) as t:
        make_proc(t.proc, meminfo_text(total=10**7, free=10**6, available=need_kb - 1))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 2, p
        assert t.knob("run") == "1"
        assert str(1000 * PAGE_SIZE) in p.stderr and str((need_kb - 1) * 1024) in p.stderr, p.stderr
        assert "--force" in p.stderr, p.stderr

        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge", "--force")
        assert p.returncode == 0 and p.stderr == "", p
        assert t.knob("run") == "2"

        t.set("run", 1)
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "-f", "unmerge")
        assert p.returncode == 0, p
        assert t.knob("run") == "2"

        t.set("run", 1)
        make_proc(t.proc, meminfo_text(total=10**7, free=10**6, available=need_kb))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge", "-v")
        assert p.returncode == 0, p
        assert f"Wrote 2 to {t.ksm}/run" in p.stderr, p.stderr
        assert t.knob("run") == "2"


def test_unmerge_old_meminfo():
    # Without MemAvailable: MemFree + Buffers + Cached.
    need_kb = 1000 * PAGE_SIZE // 1024
    with Tree(run=1, pages_sharing=1000) as t:
        make_proc(t.proc, meminfo_text(total=10**7, free=need_kb - 30, buffers=10, cached=19))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 2, p
        assert t.knob("run") == "1"
        make_proc(t.proc, meminfo_text(total=10**7, free=need_kb - 30, buffers=10, cached=20))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 0, p
        assert t.knob("run") == "2"


def test_unmerge_meminfo_errors():
    with Tree(run=1, pages_sharing=10) as t:
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 1, p
        assert f"Failed to read {t.proc}/meminfo: No such file or directory" in p.stderr, p.stderr
        assert t.knob("run") == "1"
        make_proc(t.proc, "MemTotal: lots\n")
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 1, p
        assert f"Failed to read {t.proc}/meminfo" in p.stderr, p.stderr
        # --force does not need meminfo.
        os.unlink(os.path.join(t.proc, "meminfo"))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge", "--force")
        assert p.returncode == 0, p
        assert t.knob("run") == "2"


def test_unmerge_fixture_meminfo():
    fixtures = os.environ.get("FIXTURES") or os.path.join(os.path.dirname(__file__), "..", "fixtures")
    with Tree(run=1, pages_sharing=1000) as t:
        os.makedirs(t.proc)
        shutil.copy(os.path.join(fixtures, "meminfo", "linux-2.6.32.meminfo"), os.path.join(t.proc, "meminfo"))
        p = ksmctl("-d", t.ksm, "--proc", t.proc, "unmerge")
        assert p.returncode == 0, p
        assert t.knob("run") == "2"
