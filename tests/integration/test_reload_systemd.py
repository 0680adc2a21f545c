# SPDX-License-Identifier: GPL-2.0-or-later
"""`systemctl reload ksmtuned` under a real systemd as PID 1 (the container of test_systemd.py, on the real
KSM): a good change is in force when the command returns; a broken file makes it fail while the daemon
stays active with the same MainPID and the old values; a deleted file reloads the defaults."""

import contextlib
import os
import re
import shutil
import signal
import tempfile

import test_systemd as sd
from ksmtest import REAL_KSM, RealKsm, need_real_ksm, read, skip_or_fail, write

UNIT = "ksmtuned"
GOOD = "KSM_THRES_COEF=100\nKSM_MONITOR_INTERVAL=3600\nKSM_NPAGES_MAX=100000\nDEBUG=1\n"
# Line 1 would stop KSM if any of this were applied; line 3 makes the whole file invalid.
BROKEN = "KSM_THRES_COEF=1\nKSM_MONITOR_INTERVAL=3600\nKSM_NPAGES_MAX=12abc\n"
REPEATS = 5
STATE = {}


def setup_module():
    """Stage the install, save the real KSM knobs, boot the container and install the units, once."""
    if STATE:
        return
    signal.signal(signal.SIGTERM, sd.on_sigterm)
    need_real_ksm()
    for tool in ("systemd-nspawn", "nsenter", "meson"):
        if not shutil.which(tool):
            skip_or_fail(f"{tool} is not installed (systemd-nspawn: apt-get install systemd-container)")
    stage = tempfile.mkdtemp(prefix="reload-test-stage-", dir=sd.BUILD_ROOT)
    STATE["stage"] = stage
    sd.stage_install(stage)
    STATE["ksm"] = RealKsm().__enter__()
    advisor = os.path.join(REAL_KSM, "advisor_mode")
    if os.path.exists(advisor) and "[none]" not in read(advisor):
        write(advisor, "none\n")  # the advisor would own pages_to_scan
    ct = sd.Container(stage, stage + ".log", sd.default_config_path(sd.find_staged(stage, "ksmtuned", True)))
    STATE["ct"] = ct
    sd.test_boot_and_install_units(ct)


def teardown_module():
    ct = STATE.pop("ct", None)
    if ct:
        sd.SIGTERM_STATE["teardown"] = ct.signal_init
        ct.end()
    if "ksm" in STATE:
        STATE.pop("ksm").__exit__(None, None, None)
    stage = STATE.pop("stage", None)
    if stage:
        shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stage + ".log")


def running(conf=GOOD):
    """The container, with ksmtuned active on conf (started if it is not); its MainPID."""
    setup_module()
    ct = STATE["ct"]
    if ct.is_active(UNIT) != "active":
        ct.write(ct.conf, conf)
        r = ct.systemctl("start", UNIT)
        assert r.returncode == 0, f"systemctl start failed: {r.stderr}{ct.diag()}"
    else:
        ct.write(ct.conf, conf)
        r = ct.systemctl("reload", UNIT)
        assert r.returncode == 0, f"systemctl reload failed: {r.stderr}{ct.diag()}"
    return ct, ct.show(UNIT, "MainPID")["MainPID"]


def test_good_change_in_force_when_reload_returns():
    ct, pid = running()
    assert sd.host_knob("run") == "1", f"run {sd.host_knob('run')}{ct.diag()}"
    for i in range(REPEATS):
        boost = 100 + 100 * i
        before = int(sd.host_knob("pages_to_scan"))
        ct.write(ct.conf, GOOD + f"KSM_NPAGES_BOOST={boost}\n")
        r = ct.systemctl("reload", UNIT)
        got = int(sd.host_knob("pages_to_scan"))  # at once: the reload's adjustment must be done already
        assert r.returncode == 0, f"systemctl reload failed: {r.stderr}{ct.diag()}"
        assert got == before + boost, f"reload {i}: pages_to_scan {got}, want {before} + {boost}{ct.diag()}"
    props = ct.show(UNIT, "ActiveState", "MainPID", "NRestarts")
    assert props == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}, f"{props}{ct.diag()}"


def test_broken_file_fails_and_keeps_the_daemon():
    ct, pid = running()
    ct.write(ct.conf, GOOD + "KSM_NPAGES_BOOST=300\n")
    assert ct.systemctl("reload", UNIT).returncode == 0, ct.diag()
    before = int(sd.host_knob("pages_to_scan"))
    reloads = ct.journal(UNIT).count("Reloading configuration")
    ct.write(ct.conf, BROKEN)
    r = ct.systemctl("reload", UNIT)
    assert r.returncode != 0, f"systemctl reload of a broken file returned 0{ct.diag()}"
    props = ct.show(UNIT, "ActiveState", "SubState", "MainPID", "NRestarts")
    assert props == {"ActiveState": "active", "SubState": "running", "MainPID": pid, "NRestarts": "0"}, \
        f"{props}{ct.diag()}"
    error = f"{ct.conf}:3: KSM_NPAGES_MAX=12abc: not an integer"
    j = ct.wait_journal(UNIT, re.escape(error))
    assert error in j, f"no {error!r} in the unit's journal{ct.diag()}"
    assert "not reloading" in j, f"the reload command did not say it refused{ct.diag()}"
    assert j.count("Reloading configuration") == reloads, f"the daemon was signalled{ct.diag()}"
    # The old values are in force: an adjustment now boosts by 300, where line 1 would stop KSM.
    n = len(sd.adjustments(j, "SIGUSR1"))
    assert ct.systemctl("kill", "-s", "USR1", UNIT).returncode == 0
    j = ct.wait_journal(UNIT, r"^adjustment #\d+ \(SIGUSR1\)", n + 1)
    assert len(sd.adjustments(j, "SIGUSR1")) == n + 1, f"no adjustment after SIGUSR1{ct.diag()}"
    assert sd.host_knob("run") == "1" and int(sd.host_knob("pages_to_scan")) == before + 300, \
        f"run {sd.host_knob('run')} pages_to_scan {sd.host_knob('pages_to_scan')}, want 1 and {before + 300}"


def test_deleted_file_reloads_the_defaults():
    ct, pid = running()
    assert sd.host_knob("run") == "1", ct.diag()
    r = ct.run("rm", "-f", ct.conf)
    assert r.returncode == 0, r.stderr
    r = ct.systemctl("reload", UNIT)
    run = sd.host_knob("run")
    assert r.returncode == 0, f"systemctl reload failed: {r.stderr}{ct.diag()}"
    # The default threshold (20 % of memory) is far below this idle host's free memory: KSM stops.
    assert run == "0", f"run {run} after reloading the defaults{ct.diag()}"
    assert ct.show(UNIT, "MainPID")["MainPID"] == pid, ct.diag()
    r = ct.systemctl("stop", UNIT)
    assert r.returncode == 0, f"systemctl stop failed: {r.stderr}{ct.diag()}"
