# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package, built from this checkout: lintian, then installed over Debian's ksmtuned and over a
stand-in of Proxmox VE's ksm-control-daemon in a Debian 12 root booted with systemd, unattended."""

import os
import re
import subprocess
import time

from pkgtest import (SOURCE_ROOT, Root, build_deb, debian_deb, elapsed, expected_sleep, host_knob,
                     need_tools, our_deb, run)
from ksmtest import REAL_KSM, RealKsm, need_real_ksm, wait_for, write

OUR_VERSION = "5.0.0-1"
DROPIN = "/etc/ksmtuned.conf.d/50-proxmox-defaults.conf"
UNIT_DROPIN = "/etc/systemd/system/ksmtuned.service.d/50-proxmox.conf"
# A test's own drop-in: the debug line of each adjustment in the journal, with the committed figure.
DEBUG_DROPIN = "/etc/ksmtuned.conf.d/90-test-debug.conf"
ADJUSTMENT = re.compile(r"^adjustment #\d+ \(([^)]*)\): .* committed (\d+) \((\d+) guests\)", re.M)
FALLBACK = "counting their RSS instead"
STARTED = re.compile(r"^ksmtuned \S+ started: interval (\d+) s, .*, sleep (\d+) ms", re.M)


def need_all():
    need_tools("dpkg-buildpackage", "dh", "lintian", "mmdebstrap", "systemd-nspawn", "nsenter")
    need_real_ksm()


def deb_file(deb, path):
    """One file of a .deb, as bytes."""
    return subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xOf - '.{path}'", shell=True,
                          capture_output=True, check=True).stdout


def test_conffiles_are_debians():
    """The design that keeps edited files with no question: our conffiles are Debian's, byte for byte."""
    need_tools("dpkg-deb")
    ours = our_deb()
    package = subprocess.run(["dpkg-deb", "-f", ours, "Package"], capture_output=True, text=True).stdout
    assert package.strip() == "ksmtuned", package
    listed = subprocess.run(f"dpkg-deb --ctrl-tarfile '{ours}' | tar -xOf - ./conffiles", shell=True,
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(listed) == ["/etc/default/ksm", "/etc/ksmtuned.conf"], listed
    for path in listed:
        assert deb_file(ours, path) == deb_file(debian_deb(), path), f"{path} differs from Debian's"


def test_alert_rules_as_documented():
    """ksmtuned(8) names the alerting rules' path: there, uncompressed, as the checkout has them."""
    need_tools("dpkg-deb")
    path = "/usr/share/doc/ksmtuned/prometheus/ksmtuned.rules.yml"
    with open(os.path.join(SOURCE_ROOT, "contrib", "prometheus", "ksmtuned.rules.yml"), "rb") as f:
        assert deb_file(our_deb(), path) == f.read(), f"{path} differs from contrib/prometheus's"


def test_lintian():
    need_tools("lintian")
    r = run(["lintian", "--pedantic", "--info", build_deb()], check=False)
    bad = [line for line in r.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    print(r.stdout, end="")
    assert not bad, "lintian:\n" + "\n".join(bad)
    assert r.returncode == 0, r.stdout + r.stderr


def ours_running(root):
    for unit in ("ksm", "ksmtuned"):
        assert root.active(unit) == "active", f"{unit}: {root.active(unit)}\n{root.journal(unit)}"
    assert wait_for(lambda: root.main_exe("ksmtuned") == "/usr/sbin/ksmtuned", 10), \
        f"ksmtuned.service does not run our daemon: {root.main_exe('ksmtuned')}"
    m = wait_for(lambda: STARTED.search(root.journal("ksmtuned")), 10)
    assert m, root.journal("ksmtuned")
    return m


def installed_version(root):
    r = root.sh("dpkg-query -W -f='${Version} ${db:Status-Abbrev}' ksmtuned", check=False)
    return r.stdout.strip()


def leftovers(root):
    """Files whose names say ksm anywhere in the root, outside dpkg's and apt's own records."""
    r = root.sh("find / -xdev \\( -path /proc -o -path /sys -o -path /var/lib/dpkg -o -path /var/cache/apt "
                "-o -path /opt/ksmtuned-test-packages -o -path /var/log/journal \\) -prune -o -name '*ksm*' -print")
    return set(r.stdout.split())


def no_dpkg_debris(root):
    r = root.sh("find /etc /var/log \\( -name '*.dpkg-*' -o -name '*.ucf-*' -o -name '*.ksm-control-daemon*' \\) "
                "-print")
    assert r.stdout.strip() == "", f"left behind: {r.stdout}"


def test_fresh_install_remove_purge_reinstall():
    need_all()
    with RealKsm(), Root("fresh") as root:
        write(os.path.join(REAL_KSM, "run"), "0\n")
        deb = root.add_package(our_deb())
        root.boot()
        before = leftovers(root)
        root.apt("install", deb)
        assert installed_version(root) == f"{OUR_VERSION} ii", installed_version(root)
        for unit in ("ksm", "ksmtuned"):
            assert root.enabled(unit) == "enabled", unit
        ours_running(root)

        root.apt("remove", "ksmtuned")
        for unit in ("ksm", "ksmtuned"):
            assert root.active(unit) in ("inactive", "unknown"), f"{unit} still {root.active(unit)}"
        # ksm.service's stop wrote 0, as the original's did: KSM is stopped, as before the install.
        assert host_knob("run") == "0", host_knob("run")
        assert root.exists("/etc/ksmtuned.conf") and root.exists("/etc/default/ksm"), "remove took the conffiles"

        root.apt("purge", "ksmtuned")
        assert installed_version(root) == "", installed_version(root)
        extra = leftovers(root) - before
        assert not extra, f"left behind after purge: {sorted(extra)}"
        assert not root.exists("/var/log/ksmtuned")

        root.apt("install", deb)
        for unit in ("ksm", "ksmtuned"):
            assert root.enabled(unit) == "enabled", unit
        ours_running(root)


# The original's file with what its comments tell the admin to do: a changed key, and debug logging.
def edit_original_conf(text):
    text = text.replace("# KSM_MONITOR_INTERVAL=60", "KSM_MONITOR_INTERVAL=1234")
    text = text.replace("# LOGFILE=/var/log/ksmtuned", "LOGFILE=/var/log/ksmtuned")
    text = text.replace("# DEBUG=1", "DEBUG=1")
    assert text.count("\nKSM_MONITOR_INTERVAL=1234") + text.count("\nLOGFILE=") + text.count("\nDEBUG=1") == 3
    return text


def upgrade_from_debian(name, edit=False, disable=False):
    need_all()
    with RealKsm(), Root(name) as root:
        old = root.add_package(debian_deb())
        new = root.add_package(our_deb())
        root.boot()
        root.apt("install", old)
        assert root.active("ksmtuned") == "active", root.journal("ksmtuned")
        expected = {p: root.read(p) for p in ("/etc/ksmtuned.conf", "/etc/default/ksm")}
        old_log = b"Sun Nov 29 10:00:00 UTC 2026: committed 0 free 1000\n"
        if edit:
            expected["/etc/ksmtuned.conf"] = edit_original_conf(expected["/etc/ksmtuned.conf"].decode()).encode()
            expected["/etc/default/ksm"] += b"KSM_MAX_KERNEL_PAGES=123456\n"
            # What the original wrote there with DEBUG=1 and LOGFILE=/var/log/ksmtuned.
            root.write("/var/log/ksmtuned", old_log)
            for p, data in expected.items():
                root.write(p, data)
        if disable:
            root.sh("systemctl disable --now ksmtuned.service")

        t = time.monotonic()
        r = root.apt("install", new)
        print(f"upgrade took {elapsed(t)}", flush=True)
        assert installed_version(root) == f"{OUR_VERSION} ii", installed_version(root)
        for p, data in expected.items():
            assert root.read(p) == data, f"{p} changed:\n{root.read(p)!r}\nexpected\n{data!r}"
        no_dpkg_debris(root)
        assert root.enabled("ksm") == "enabled"
        if disable:
            assert root.enabled("ksmtuned") == "disabled", root.enabled("ksmtuned")
            assert root.active("ksmtuned") == "inactive", root.active("ksmtuned")
            return
        assert root.enabled("ksmtuned") == "enabled"
        m = ours_running(root)
        if not edit:
            assert m.group(1) == "60", m.group(0)
            return
        # The admin's values are in force: their interval, their debug lines, their environment file.
        assert m.group(1) == "1234", m.group(0)
        assert "/etc/default/ksm" in root.sh("systemctl show -p EnvironmentFiles ksm").stdout
        assert wait_for(lambda: re.search(r"^adjustment #1 \(start-up\)", root.journal("ksmtuned"), re.M), 10), \
            root.journal("ksmtuned")
        # The old log file moved into the logs directory, whole, and was announced.
        assert os.path.isdir(root.path("/var/log/ksmtuned"))
        log = root.read("/var/log/ksmtuned/ksmtuned.log")
        assert log.startswith(old_log), log
        assert "moved the old debug log" in r.stdout, r.stdout
        # LOGFILE=/var/log/ksmtuned now names a directory: the daemon appends to ksmtuned.log in it, so the
        # admin's debug file goes on growing after the old lines, and says so in the journal.
        assert wait_for(lambda: b"adjustment #1" in root.read("/var/log/ksmtuned/ksmtuned.log"), 10), \
            root.read("/var/log/ksmtuned/ksmtuned.log") + root.journal("ksmtuned").encode()
        assert root.read("/var/log/ksmtuned/ksmtuned.log").startswith(old_log)
        j = root.journal("ksmtuned")
        assert "LOGFILE /var/log/ksmtuned is a directory: appending the debug lines to " \
               "/var/log/ksmtuned/ksmtuned.log" in j, j
        assert "Failed to open LOGFILE" not in j, j


def test_upgrade_untouched():
    upgrade_from_debian("untouched")


def test_upgrade_edited():
    upgrade_from_debian("edited", edit=True)


def test_upgrade_disabled():
    upgrade_from_debian("disabled", disable=True)


# A stand-in for Proxmox VE's ksm-control-daemon 1.5-1 (its archive is out of reach here): the same
# name, version, file list, conffiles and unit, and dh_installsystemd's enabling of ksmtuned.service.
PVE_UNIT = """[Unit]
Description=Kernel Samepage Merging (KSM) Tuning Daemon

[Service]
ExecStart=/usr/sbin/ksmtuned
ExecReload=/bin/kill -USR1 $MAINPID
Type=forking

[Install]
WantedBy=multi-user.target
"""
PVE_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
\tif deb-systemd-helper --quiet was-enabled ksmtuned.service; then
\t\tdeb-systemd-helper enable ksmtuned.service >/dev/null || true
\telse
\t\tdeb-systemd-helper update-state ksmtuned.service >/dev/null || true
\tfi
\tif [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\t\tdeb-systemd-invoke start ksmtuned.service >/dev/null || true
\tfi
fi
"""
PVE_PRERM = """#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
\tdeb-systemd-invoke stop ksmtuned.service >/dev/null || true
fi
"""
PVE_POSTRM = """#!/bin/sh
set -e
if [ "$1" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
\tdeb-systemd-helper purge ksmtuned.service >/dev/null || true
fi
"""
# The original's daemon forks and loops; the stand-in only does that much.
PVE_DAEMON = "#!/bin/sh\n(while :; do sleep 60; done) </dev/null >/dev/null 2>&1 &\n"
PVE_INIT = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: ksmtuned\n# Required-Start: $remote_fs\n" \
           "# Required-Stop: $remote_fs\n# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n" \
           "# Short-Description: ksmtuned\n### END INIT INFO\nexit 0\n"


def pve_conf():
    """Proxmox's /etc/ksmtuned.conf: Debian's, with Proxmox's documented changes (sleep, metric)."""
    with open(os.path.join(SOURCE_ROOT, "debian/original-conffiles/ksmtuned.conf")) as f:
        text = f.read()
    text = text.replace("# KSM_SLEEP_MSEC=10\n", "# KSM_SLEEP_MSEC=100\n")
    text = text.replace("# KSM_THRES_CONST=2048\n", "# KSM_THRES_CONST=2048\n\n# memory of the kvm processes: "
                        "pss (default) or rsz\n# KSM_PS_METRIC=pss\n")
    assert "KSM_SLEEP_MSEC=100" in text and "KSM_PS_METRIC" in text
    return text


def build_pve_standin(out):
    root = os.path.join(out, "ksm-control-daemon")
    files = {
        "usr/sbin/ksmtuned": (PVE_DAEMON, 0o755),
        "etc/ksmtuned.conf": (pve_conf(), 0o644),
        "etc/default/ksmtuned": ("# Defaults for ksmtuned initscript\nSTART=yes\n", 0o644),
        "etc/init.d/ksmtuned": (PVE_INIT, 0o755),
        "lib/systemd/system/ksmtuned.service": (PVE_UNIT, 0o644),
        "DEBIAN/control": ("Package: ksm-control-daemon\nVersion: 1.5-1\nArchitecture: all\n"
                           "Maintainer: Proxmox Support Team <support@proxmox.com>\nDepends: bash (>= 3.2)\n"
                           "Section: admin\nPriority: optional\nDescription: The KSM tuning daemon\n"
                           " A stand-in with the file list of Proxmox VE's package.\n", 0o644),
        "DEBIAN/conffiles": ("/etc/default/ksmtuned\n/etc/init.d/ksmtuned\n/etc/ksmtuned.conf\n", 0o644),
        "DEBIAN/postinst": (PVE_POSTINST, 0o755),
        "DEBIAN/prerm": (PVE_PRERM, 0o755),
        "DEBIAN/postrm": (PVE_POSTRM, 0o755),
    }
    for p, (text, mode) in files.items():
        write(os.path.join(root, p), text)
        os.chmod(os.path.join(root, p), mode)
    deb = os.path.join(out, "ksm-control-daemon_1.5-1_all.deb")
    run(["dpkg-deb", "--root-owner-group", "--build", root, deb])
    return deb


def start_pve_guest(root):
    """A stand-in for a Proxmox VE guest: a process named kvm, run by systemd as root with every capability the
    container has (as Proxmox runs its guests), sharing pages with other processes (libc's), so that its PSS
    is well below its RSS. Returns its PID as the host sees it."""
    root.sh("cp /bin/sleep /usr/local/bin/kvm && systemd-run --quiet --unit=pve-vm100 /usr/local/bin/kvm infinity")
    main_pid = wait_for(lambda: root.sh("systemctl show -p MainPID --value pve-vm100").stdout.strip() not in ("", "0")
                        and root.sh("systemctl show -p MainPID --value pve-vm100").stdout.strip(), 10)
    assert main_pid, root.sh("systemctl status pve-vm100", check=False).stdout
    ns = os.readlink(f"/proc/{root.init}/ns/pid")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                nspid = [line.split()[1:] for line in f if line.startswith("NSpid:")]
            if nspid and nspid[0][-1] == main_pid and os.readlink(f"/proc/{pid}/ns/pid") == ns:
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"kvm (PID {main_pid} in the container) not found from the host")


def rss_kb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def startup_adjustment(root):
    """The start-up adjustment line of ksmtuned's latest start, once there is one for each start."""
    def latest():
        j = root.journal("ksmtuned")
        starts = len(re.findall(r"^ksmtuned \S+ started:", j, re.M))
        lines = [m for m in ADJUSTMENT.finditer(j) if m.group(1) == "start-up"]
        return lines[-1] if starts and len(lines) == starts else None
    m = wait_for(latest, 20)
    assert m, root.journal("ksmtuned")
    return m


def check_pss_read(root, guest, expect_read):
    """ksmtuned's latest start-up adjustment counted the kvm guest by its PSS (expect_read), or by its RSS, as it
    does when the kernel refuses it the guest's smaps_rollup, saying so in its log."""
    m = startup_adjustment(root)
    committed, guests, rss = int(m.group(2)), int(m.group(3)), rss_kb(guest)
    assert guests == 1, m.group(0)
    print(f"     kvm guest run as root: ksmtuned counted {committed} kB, its RSS is {rss} kB", flush=True)
    if expect_read:
        # A PSS counts a share of what the guest shares with other processes (libc); its RSS counts it whole.
        assert committed < rss, f"{m.group(0)}: committed {committed} kB is not below the guest's RSS {rss} kB"
        assert FALLBACK not in root.journal("ksmtuned"), root.journal("ksmtuned")
    else:
        assert wait_for(lambda: FALLBACK in root.journal("ksmtuned"), 10), root.journal("ksmtuned")
        assert committed == rss, f"{m.group(0)}: not the guest's RSS ({rss} kB)"


def replace_proxmox(name, disable=False, delete=False, with_dpkg=False):
    need_all()
    with RealKsm(), Root(name) as root:
        old = root.add_package(build_pve_standin(os.path.join(root.pkgs, "build")))
        new = root.add_package(our_deb())
        root.boot()
        root.apt("install", old)
        assert root.active("ksmtuned") == "active", root.journal("ksmtuned")
        conf = pve_conf().replace("# KSM_MONITOR_INTERVAL=60", "KSM_MONITOR_INTERVAL=1234").encode()
        root.write("/etc/ksmtuned.conf", conf)
        if delete:
            os.unlink(root.path("/etc/ksmtuned.conf"))
        if disable:
            root.sh("systemctl disable --now ksmtuned.service")
        else:
            guest = start_pve_guest(root)
            os.makedirs(root.path(os.path.dirname(DEBUG_DROPIN)), exist_ok=True)
            root.write(DEBUG_DROPIN, "DEBUG=1\n")

        if with_dpkg:
            # dpkg itself removes the conflicting package in favour of ours (Replaces), after our preinst.
            r = root.sh(f"DEBIAN_FRONTEND=noninteractive dpkg -i {new}")
        else:
            r = root.apt("install", new)
        assert installed_version(root) == f"{OUR_VERSION} ii", installed_version(root)
        pve = root.sh("dpkg-query -W -f='${db:Status-Abbrev}' ksm-control-daemon", check=False).stdout.strip()
        # Removed, its conffiles left to a purge ("rc"; "ic" when dpkg removed it, the selection unchanged).
        assert pve == "" or pve[1:] == "c", f"ksm-control-daemon is still {pve!r}:\n{r.stdout}"
        if delete:
            assert not root.exists("/etc/ksmtuned.conf"), "the admin's deletion was undone"
        else:
            assert root.read("/etc/ksmtuned.conf") == conf, root.read("/etc/ksmtuned.conf")
        no_dpkg_debris(root)
        dropin = root.read(DROPIN).decode()
        assert re.search(r"^KSM_DEFAULTS=proxmox$", dropin, re.M) and dropin.startswith("#"), dropin
        # Proxmox's guests run as root with every capability: reading their PSS takes CAP_SYS_PTRACE.
        unit_dropin = root.read(UNIT_DROPIN).decode()
        assert re.search(r"^\[Service\]\nCapabilityBoundingSet=CAP_SYS_PTRACE$", unit_dropin, re.M) and \
            unit_dropin.startswith("#"), unit_dropin
        caps = root.sh("systemctl show -p CapabilityBoundingSet --value ksmtuned").stdout.split()
        assert caps == ["cap_sys_ptrace"], caps
        if disable:
            for unit in ("ksm", "ksmtuned"):
                assert root.enabled(unit) == "disabled", f"{unit}: {root.enabled(unit)}"
            assert root.active("ksmtuned") == "inactive", root.active("ksmtuned")
            return
        if delete:
            m = ours_running(root)
            assert m.group(1) == "60", m.group(0)
            check_pss_read(root, guest, True)
            return
        for unit in ("ksm", "ksmtuned"):
            assert root.enabled(unit) == "enabled", f"{unit}: {root.enabled(unit)}"
        m = ours_running(root)
        assert m.group(1) == "1234", m.group(0)
        assert "unknown key" not in root.journal("ksmtuned"), root.journal("ksmtuned")
        assert int(m.group(2)) == expected_sleep(100), f"{m.group(0)}: expected sleep {expected_sleep(100)}"
        check_pss_read(root, guest, True)

        # Purging the replaced package leaves the file, now ours, alone.
        root.sh("dpkg --purge ksm-control-daemon")
        assert root.read("/etc/ksmtuned.conf") == conf
        assert not root.exists("/etc/default/ksmtuned")
        # The drop-ins are written once: an admin's deletion holds across upgrades.
        os.unlink(root.path(DROPIN))
        os.unlink(root.path(UNIT_DROPIN))
        root.apt("install", "--reinstall", new)
        assert not root.exists(DROPIN), "the drop-in came back on an upgrade"
        assert not root.exists(UNIT_DROPIN), "the unit's drop-in came back on an upgrade"
        # Without the unit's drop-in, the same guest is counted by its RSS, and the log says why.
        root.write(DROPIN, "KSM_DEFAULTS=proxmox\n")
        root.sh("systemctl restart ksmtuned")
        check_pss_read(root, guest, False)
        root.sh("systemctl stop pve-vm100")
        os.unlink(root.path(DEBUG_DROPIN))
        root.apt("purge", "ksmtuned")
        for p in ("/etc/ksmtuned.conf", "/etc/ksmtuned.conf.d", "/var/log/ksmtuned", UNIT_DROPIN,
                  os.path.dirname(UNIT_DROPIN)):
            assert not root.exists(p), f"{p} left after purge"


def test_replaces_proxmox():
    replace_proxmox("proxmox")


def test_replaces_proxmox_disabled():
    replace_proxmox("proxmox-disabled", disable=True)


def test_replaces_proxmox_conf_deleted():
    replace_proxmox("proxmox-deleted", delete=True)


def test_replaces_proxmox_with_dpkg():
    replace_proxmox("proxmox-dpkg", with_dpkg=True)
