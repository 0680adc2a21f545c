# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned --check-config and ksmtuned --reload=PID (the unit's ExecReload=) against temporary trees:
problems printed as the daemon prints them, nothing written, and a reload that is in force when the
command returns 0 and refused (the daemon untouched) when it returns 1."""

import os
import re
import shutil
import signal
import subprocess
import tempfile

from ksmtest import (KSMTUNED, SOURCE_ROOT, Daemon, ksm_values, make_ksm_dir, make_proc, meminfo_text,
                     read, wait_for, write)

GIB = 1024 * 1024  # kB
TOTAL = 16 * GIB
FREE = 10 * GIB  # above the default threshold (20 %), below one of 100 %
# THRES_COEF=100: free memory is always short, KSM runs; each adjustment adds KSM_NPAGES_BOOST.
GOOD = "KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=3600\n"
# Line 1 would stop KSM if any of this were applied; lines 2 and 3 make the file invalid.
BROKEN = "KSM_THRES_COEF=1\nKSM_NPAGES_MAX=12abc\nKSM_SLEEP_MSEC=-5\n"
BROKEN_DROPIN = "# comment\nKSM_NPAGES_BOOST=lots\n"
REPEATS = 20
ERROR_LINE = re.compile(r"^(error|warning): (/\S+:\d+: .*)$", re.M)


class Env:
    """A KSM directory, /proc tree, configuration and runtime directory for one daemon."""

    def __init__(self, conf=GOOD):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-reload-")
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), run=0)
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(TOTAL, FREE))
        self.run = os.path.join(self.dir, "run")
        os.mkdir(self.run)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, conf)

    def start(self):
        d = Daemon([KSMTUNED, "--debug", "--config", self.conf, "--ksm-dir", self.ksm, "--proc", self.proc,
                    "--runtime-dir", self.run])
        assert wait_for(lambda: "adjustment #1" in d.output(), 20), d.output()
        assert wait_for(lambda: os.path.exists(os.path.join(self.run, "reload")), 10), d.output()
        return d

    def reload(self, d):
        return subprocess.run([KSMTUNED, f"--reload={d.pid}", "--runtime-dir", self.run], capture_output=True,
                              text=True, timeout=90)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def check_config(*args, **kw):
    return subprocess.run([KSMTUNED, "--check-config", *args], capture_output=True, text=True, timeout=30, **kw)


def problems(text):
    return [m.group(0) for m in ERROR_LINE.finditer(text)]


def test_check_config_valid_and_invalid():
    e = Env(BROKEN)
    try:
        write(e.conf + ".d/50-bad.conf", BROKEN_DROPIN)
        r = check_config("--config", e.conf)
        assert r.returncode == 1, r
        got = problems(r.stderr)
        want = [f"error: {e.conf}:2: KSM_NPAGES_MAX=12abc: not an integer",
                f"error: {e.conf}.d/50-bad.conf:2: KSM_NPAGES_BOOST=lots: not an integer"]
        for w in want:
            assert w in got, f"{w!r} not in {got}"
        assert any(f"{e.conf}:3: KSM_SLEEP_MSEC=-5" in p for p in got), got
        # Exactly what the daemon says about the same files when it refuses to start.
        d = subprocess.run([KSMTUNED, "--config", e.conf, "--ksm-dir", e.ksm, "--proc", e.proc], capture_output=True,
                           text=True, timeout=30)
        assert d.returncode == 1, d
        assert problems(d.stdout + d.stderr) == got, (d.stderr, r.stderr)
        os.unlink(e.conf + ".d/50-bad.conf")
        write(e.conf, GOOD + "KSM_NPAGES_BOOST=500\n")
        r = check_config("--config", e.conf)
        assert r.returncode == 0 and not problems(r.stderr), r
        # A guest expression the daemon could not compile is a problem too (not a key syntax error).
        write(e.conf, GOOD + "KSM_GUEST_COMM=\"qemu[\"\n")
        r = check_config("--config", e.conf)
        assert r.returncode == 1 and "qemu[" in r.stderr, r
    finally:
        e.cleanup()


def test_check_config_needs_no_root_and_writes_nothing():
    e = Env(BROKEN)
    try:
        os.chmod(e.dir, 0o755)
        os.chmod(e.conf, 0o644)
        before = {p: (os.stat(os.path.join(e.dir, p)).st_mtime_ns) for p in os.listdir(e.dir)}
        knobs = ksm_values(e.ksm)
        cwd = tempfile.mkdtemp(prefix="ksmtuned-cwd-")
        os.chmod(cwd, 0o777)
        try:
            prefix = []
            if os.geteuid() == 0 and shutil.which("setpriv"):
                prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            for conf, want in ((e.conf, 1), (os.path.join(SOURCE_ROOT, "conf", "ksmtuned.conf"), 0)):
                r = subprocess.run([*prefix, KSMTUNED, "--check-config", "--config", conf], capture_output=True,
                                   text=True, timeout=30, cwd=cwd)
                assert r.returncode == want, (conf, r)
            assert os.listdir(cwd) == [], os.listdir(cwd)
        finally:
            shutil.rmtree(cwd)
        after = {p: (os.stat(os.path.join(e.dir, p)).st_mtime_ns) for p in os.listdir(e.dir)}
        assert after == before, (before, after)
        assert ksm_values(e.ksm) == knobs
    finally:
        e.cleanup()


def test_reload_in_force_when_it_returns():
    """Each reload's value is in the KSM directory the moment the command returns, every time."""
    e = Env()
    try:
        with e.start() as d:
            assert ksm_values(e.ksm)["run"] == "1", d.output()
            for i in range(REPEATS):
                boost = 100 + 50 * i
                before = int(ksm_values(e.ksm)["pages_to_scan"])
                write(e.conf, GOOD + f"KSM_NPAGES_BOOST={boost}\nKSM_NPAGES_MAX=100000\n")
                r = e.reload(d)
                got = int(ksm_values(e.ksm)["pages_to_scan"])  # now, not after a wait
                assert r.returncode == 0, (r, d.output()[-2000:])
                assert got == before + boost, f"reload {i}: pages_to_scan {got}, want {before} + {boost}"
            assert d.output().count("Reloading configuration") == REPEATS
            assert d.alive()
    finally:
        e.cleanup()


def pending_signals(pid):
    mask = 0
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            mask |= int(line.split()[1], 16)
    return mask


def test_reload_waits_for_a_busy_daemon():
    """A daemon that cannot take the signal yet (stopped here): the command waits until the reload is
    in force, instead of returning once the signal is sent."""
    e = Env()
    try:
        with e.start() as d:
            before = int(ksm_values(e.ksm)["pages_to_scan"])
            write(e.conf, GOOD + "KSM_NPAGES_BOOST=700\nKSM_NPAGES_MAX=100000\n")
            os.kill(d.pid, signal.SIGSTOP)
            client = None
            try:
                client = subprocess.Popen([KSMTUNED, f"--reload={d.pid}", "--runtime-dir", e.run],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                hup = 1 << (signal.SIGHUP - 1)
                assert wait_for(lambda: client.poll() is not None or pending_signals(d.pid) & hup, 30)
                knob = ksm_values(e.ksm)["pages_to_scan"]
                assert client.poll() is None, \
                    f"returned {client.returncode} with the daemon stopped, pages_to_scan {knob}"
            finally:
                os.kill(d.pid, signal.SIGCONT)
                if client:
                    out, err = client.communicate(timeout=90)
            got = int(ksm_values(e.ksm)["pages_to_scan"])
            assert client.returncode == 0, (out, err)
            assert got == before + 700, (got, before, d.output()[-2000:])
    finally:
        e.cleanup()


def test_reload_refused_leaves_the_daemon_untouched():
    e = Env()
    try:
        with e.start() as d:
            write(e.conf, BROKEN)
            write(e.conf + ".d/50-bad.conf", BROKEN_DROPIN)
            r = e.reload(d)
            assert r.returncode == 1, r
            assert f"{e.conf}:2: KSM_NPAGES_MAX=12abc: not an integer" in r.stderr, r.stderr
            assert f"{e.conf}.d/50-bad.conf:2: KSM_NPAGES_BOOST=lots" in r.stderr, r.stderr
            assert f"Invalid configuration in {e.conf}: not reloading" in r.stderr, r.stderr
            d.signal_and_settle(signal.SIGUSR1)
            assert "Reloading" not in d.output(), d.output()  # never signalled
            # The running configuration (THRES_COEF=100) is in force: KSM still runs, boosted again.
            assert wait_for(lambda: "adjustment #2 (SIGUSR1)" in d.output(), 10), d.output()
            assert ksm_values(e.ksm)["run"] == "1" and ksm_values(e.ksm)["pages_to_scan"] == "600", d.output()
            assert d.alive()
    finally:
        e.cleanup()


def test_refusal_goes_down_the_journal_stream():
    """Under systemd, ExecReload='s stderr is the journal stream (JOURNAL_STREAM names it). The command exits
    at once, so its lines must go down that stream, which journald attributed to the unit when it was
    connected, each with its "<N>" priority; a native message from a process that has exited is often
    not the unit's."""
    e = Env()
    try:
        with e.start() as d:
            write(e.conf, BROKEN)
            for argv in ([f"--reload={d.pid}", "--runtime-dir", e.run], ["--check-config", "--config", e.conf]):
                out = os.path.join(e.dir, "stream")
                with open(out, "w") as f:
                    st = os.fstat(f.fileno())
                    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
                    r = subprocess.run([KSMTUNED, *argv], stderr=f, stdout=subprocess.DEVNULL, env=env, timeout=90)
                text = read(out)
                assert r.returncode == 1, (argv, text)
                assert f"<3>{e.conf}:2: KSM_NPAGES_MAX=12abc: not an integer\n" in text, (argv, text)
                assert f"<3>Invalid configuration in {e.conf}" in text, (argv, text)
                assert "error: " not in text, (argv, text)
            assert "Reloading" not in d.output(), d.output()  # never signalled
    finally:
        e.cleanup()


def test_reload_of_a_deleted_file_takes_the_defaults():
    e = Env()
    try:
        with e.start() as d:
            assert ksm_values(e.ksm)["run"] == "1", d.output()
            os.unlink(e.conf)
            r = e.reload(d)
            run = ksm_values(e.ksm)["run"]
            assert r.returncode == 0, r
            # The default threshold (20 % of 16 GiB) is below the 10 GiB free: KSM stops, as the original did.
            assert run == "0", d.output()
    finally:
        e.cleanup()


def test_reload_the_daemon_refuses():
    """Valid files, but the daemon cannot apply them (no MemTotal to derive the threshold from): exit 1."""
    e = Env()
    try:
        with e.start() as d:
            write(os.path.join(e.proc, "meminfo"), "MemFree: 1 kB\n")
            write(e.conf, GOOD + "KSM_NPAGES_BOOST=500\n")
            r = e.reload(d)
            assert r.returncode == 1, r
            assert f"could not apply {e.conf}" in r.stderr and "keeps the running configuration" in r.stderr, r
            assert f"Failed to read {e.proc}/meminfo: no MemTotal line" in d.output(), d.output()
            assert "Configuration not reloaded" in d.output(), d.output()
            assert d.alive()
    finally:
        e.cleanup()


def test_reload_usage_errors():
    e = Env()
    try:
        r = subprocess.run([KSMTUNED, "--reload=", "--runtime-dir", e.run], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "No daemon to reload" in r.stderr, r
        r = subprocess.run([KSMTUNED, "--reload=12x"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "not a process ID" in r.stderr, r
        env = {k: v for k, v in os.environ.items() if k != "RUNTIME_DIRECTORY"}
        r = subprocess.run([KSMTUNED, f"--reload={os.getpid()}"], capture_output=True, text=True, timeout=30,
                           env=env)
        assert r.returncode == 1 and "No runtime directory" in r.stderr, r
        # A daemon that records nothing (an older one): refused, and it is not signalled.
        r = subprocess.run([KSMTUNED, f"--reload={os.getpid()}", "--runtime-dir", e.run], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and f"Failed to read {e.run}/reload" in r.stderr, r
        r = check_config("--reload=1")
        assert r.returncode == 2, r
    finally:
        e.cleanup()


def test_notify_reload_unit():
    """-Dservice_type=notify-reload: Type=notify-reload, the same ExecReload=, and a ReloadSignal= that
    does nothing (systemd sends it as well as running ExecReload=)."""
    if not shutil.which("meson"):
        print("     meson not found, skipped")
        return
    d = tempfile.mkdtemp(prefix="ksmtuned-notify-reload-")
    try:
        r = subprocess.run(["meson", "setup", d, SOURCE_ROOT, "-Dservice_type=notify-reload", "-Dtests=disabled",
                            "-Dman=disabled", "--prefix=/usr"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        unit = read(os.path.join(d, "systemd", "ksmtuned.service"))
        service = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
        keys = [line.split("=", 1)[0] for line in service.splitlines() if line and not line.startswith("#")]
        assert "Type=notify-reload\n" in service and "Type=notify\n" not in service, service
        assert "ExecReload=/usr/sbin/ksmtuned --reload=${MAINPID}\n" in service, service
        assert "ReloadSignal=SIGCONT\n" in service and keys.count("ReloadSignal") == 1, service
        assert "RuntimeDirectory=ksmtuned\n" in service, service
    finally:
        shutil.rmtree(d, ignore_errors=True)
