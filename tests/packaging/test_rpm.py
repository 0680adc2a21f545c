# SPDX-License-Identifier: GPL-2.0-or-later
"""The RPM, built from this checkout with rpmbuild: rpmlint, its scriptlets, and an upgrade over a stand-in
of Fedora's ksmtuned 0.1.0 in an rpm --root tree, with the admin's edits kept and .rpmnew beside them."""

import functools
import os
import re
import shutil
import subprocess
import time

from pkgtest import SOURCE_ROOT, WORK, Root, copy_checkout, elapsed, need_tools, run
from ksmtest import Results, write

SPEC = os.path.join(SOURCE_ROOT, "rpm", "ksmtuned.spec")
RPMLINTRC = os.path.join(SOURCE_ROOT, "rpm", "ksmtuned.rpmlintrc")
TOP = os.path.join(WORK, "rpm")
DBPATH = "/var/lib/rpm"


def spec_version():
    with open(SPEC) as f:
        return re.search(r"^Version:\s*(\S+)", f.read(), re.M).group(1)


def rpmbuild(spec, topdir):
    # Debian's rpm keeps its database per user and knows none of Fedora's packages: --nodeps.
    run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {topdir}", spec], timeout=600)
    rpms = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(topdir, "RPMS")) for f in fs
            if f.endswith(".rpm")]
    assert len(rpms) == 1, rpms
    return rpms[0]


@functools.lru_cache(maxsize=None)
def build_rpm():
    need_tools("rpmbuild")
    shutil.rmtree(TOP, ignore_errors=True)
    name = f"ksmtuned-{spec_version()}"
    src = os.path.join(TOP, "src", name)
    copy_checkout(src)
    os.makedirs(os.path.join(TOP, "SOURCES"))
    run(["tar", "-czf", os.path.join(TOP, "SOURCES", name + ".tar.gz"), "-C", os.path.dirname(src), name])
    return rpmbuild(SPEC, TOP)


def test_rpmlint():
    need_tools("rpmlint")
    r = run(["rpmlint", "-r", RPMLINTRC, build_rpm(), SPEC], check=False)
    print(r.stdout.splitlines()[-1] if r.stdout else r.stderr, flush=True)
    errors = [line for line in r.stdout.splitlines() if re.search(r": E: ", line)]
    assert not errors, "rpmlint:\n" + "\n".join(errors)
    assert re.search(r"\b0 errors\b", r.stdout), r.stdout + r.stderr


def test_paths_and_scriptlets():
    """Fedora's paths and %config(noreplace) files, and the systemd macros' scriptlets."""
    rpm = build_rpm()
    files = set(run(["rpm", "-qpl", rpm]).stdout.split())
    for p in ("/usr/libexec/ksmctl", "/usr/sbin/ksmtuned", "/usr/lib/systemd/system/ksm.service",
              "/usr/lib/systemd/system/ksmtuned.service", "/etc/ksmtuned.conf", "/etc/sysconfig/ksm",
              "/usr/share/doc/ksmtuned/prometheus/ksmtuned.rules.yml"):
        assert p in files, f"{p} not in the package: {sorted(files)}"
    assert "/usr/sbin/ksmctl" not in files
    configs = run(["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm]).stdout
    for p in ("/etc/ksmtuned.conf", "/etc/sysconfig/ksm"):
        flags = re.search(rf"^{re.escape(p)} (\S*)$", configs, re.M).group(1)
        assert "c" in flags and "n" in flags, f"{p} is not %config(noreplace): {flags!r}"
    scripts = run(["rpm", "-qp", "--scripts", rpm]).stdout
    units = "ksm.service ksmtuned.service"
    for section, action in (("postinstall", "install-system-units"), ("preuninstall", "remove-system-units"),
                            ("postuninstall", "mark-restart-system-units")):
        body = scripts.split(f"{section} scriptlet", 1)[1].split("scriptlet", 1)[0]
        assert f"/usr/lib/systemd/systemd-update-helper {action} {units}" in body, f"{section}:\n{body}"
    unit = subprocess.run(f"rpm2cpio '{rpm}' | cpio -i --quiet --to-stdout ./usr/lib/systemd/system/ksm.service",
                          shell=True, capture_output=True, text=True).stdout
    assert "ExecStart=/usr/libexec/ksmctl start" in unit, unit


# A stand-in for Fedora's ksmtuned-0.1.0-13: its file list and %config(noreplace) files.
FEDORA_SPEC = """Name: ksmtuned
Version: 0.1.0
Release: 13
Summary: Kernel Samepage Merging services (stand-in of Fedora's package)
License: GPL-2.0-or-later
BuildArch: noarch

%description
Stand-in of Fedora's ksmtuned 0.1.0 with its file list.

%install
mkdir -p %{buildroot}/usr/libexec %{buildroot}/usr/sbin %{buildroot}/usr/lib/systemd/system %{buildroot}/etc/sysconfig
printf '#!/bin/sh\\n' > %{buildroot}/usr/libexec/ksmctl
printf '#!/bin/bash\\n' > %{buildroot}/usr/sbin/ksmtuned
chmod 755 %{buildroot}/usr/libexec/ksmctl %{buildroot}/usr/sbin/ksmtuned
printf '[Service]\\nExecStart=/usr/libexec/ksmctl start\\n' > %{buildroot}/usr/lib/systemd/system/ksm.service
printf '[Service]\\nExecStart=/usr/sbin/ksmtuned\\n' > %{buildroot}/usr/lib/systemd/system/ksmtuned.service
cp %{_sourcedir}/ksmtuned.conf %{buildroot}/etc/ksmtuned.conf
cp %{_sourcedir}/ksm %{buildroot}/etc/sysconfig/ksm

%files
/usr/libexec/ksmctl
/usr/sbin/ksmtuned
/usr/lib/systemd/system/ksm.service
/usr/lib/systemd/system/ksmtuned.service
%config(noreplace) /etc/ksmtuned.conf
%config(noreplace) /etc/sysconfig/ksm
"""


def build_fedora_standin():
    top = os.path.join(TOP, "fedora")
    shutil.rmtree(top, ignore_errors=True)
    # The original's files: the same upstream configuration as Debian's package.
    for name in ("ksmtuned.conf", "ksm"):
        write(os.path.join(top, "SOURCES", name),
              open(os.path.join(SOURCE_ROOT, "debian", "original-conffiles", name)).read())
    write(os.path.join(top, "ksmtuned.spec"), FEDORA_SPEC)
    return rpmbuild(os.path.join(top, "ksmtuned.spec"), top)


def test_upgrade_over_fedoras():
    need_tools("rpm", "rpmbuild", "mmdebstrap")
    ours = build_rpm()
    old = build_fedora_standin()
    # A root tree with a shell, so that the scriptlets really run (the systemd helper they call is not
    # there, as in any rpm --root tree: they must skip it, as Fedora's do).
    with Root("rpm") as root:
        rpm = ["rpm", "--root", root.dir, "--dbpath", DBPATH]
        run(rpm + ["--initdb"])
        run(rpm + ["-i", "--nodeps", old])
        conf = root.read("/etc/ksmtuned.conf").decode()
        conf = conf.replace("# KSM_MONITOR_INTERVAL=60", "KSM_MONITOR_INTERVAL=1234")
        conf = conf.replace("# DEBUG=1", "DEBUG=1").replace("# LOGFILE=/var/log/ksmtuned", "LOGFILE=/var/log/ksmtuned")
        root.write("/etc/ksmtuned.conf", conf)
        untouched = root.read("/etc/sysconfig/ksm")
        old_log = b"Sun Nov 29 10:00:00 UTC 2026: committed 0 free 1000\n"
        root.write("/var/log/ksmtuned", old_log)

        r = run(rpm + ["-U", "--nodeps", ours])
        q = run(rpm + ["-q", "ksmtuned"]).stdout.split()
        assert q == [f"ksmtuned-{spec_version()}-1.x86_64"] or q == [f"ksmtuned-{spec_version()}-1"], q
        # The edited file is kept, ours beside it; the untouched one is replaced, with nothing beside it.
        assert root.read("/etc/ksmtuned.conf").decode() == conf
        with open(os.path.join(SOURCE_ROOT, "conf", "ksmtuned.conf"), "rb") as f:
            assert root.read("/etc/ksmtuned.conf.rpmnew") == f.read()
        assert "warning: /etc/ksmtuned.conf created as /etc/ksmtuned.conf.rpmnew" in r.stderr + r.stdout, r.stderr
        with open(os.path.join(SOURCE_ROOT, "conf", "ksm"), "rb") as f:
            assert root.read("/etc/sysconfig/ksm") == f.read() != untouched
        assert not root.exists("/etc/sysconfig/ksm.rpmnew")
        assert root.read("/usr/libexec/ksmctl").startswith(b"\x7fELF")
        # %post moved the original's log file into the logs directory.
        assert root.read("/var/log/ksmtuned/ksmtuned.log") == old_log


if __name__ == "__main__":
    results = Results("RPM package")
    for fn in (test_rpmlint, test_paths_and_scriptlets, test_upgrade_over_fedoras):
        t = time.monotonic()
        results.run(fn)
        print(f"     {fn.__name__}: {elapsed(t)}", flush=True)
    results.finish()
