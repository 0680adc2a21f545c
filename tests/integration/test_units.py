# SPDX-License-Identifier: GPL-2.0-or-later
"""The shipped units: systemd-analyze verify is clean and the sandbox exposure stays at most 2.0."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ksmtest import KSMCTL, KSMTUNED, SOURCE_ROOT, skip_or_fail


@pytest.fixture(autouse=True, scope="module")
def needs():
    if not shutil.which("systemd-analyze"):
        skip_or_fail("systemd-analyze is not installed")

UNITS = ("ksm.service", "ksmtuned.service")
MAX_EXPOSURE = 2.0


def render(unit, sbindir, service_type="notify"):
    """The unit as meson installs it, with @sbindir@ pointing at sbindir (see systemd/meson.build)."""
    signal = ("ReloadSignal=SIGCONT" if service_type == "notify-reload" else
              "# Type=notify-reload (the service_type build option) adds ReloadSignal=SIGCONT here.")
    with open(os.path.join(SOURCE_ROOT, "systemd", unit + ".in")) as f:
        return (f.read().replace("@sbindir@", sbindir).replace("@sysconfdir@", "/etc")
                .replace("@service_type@", service_type).replace("@reload_signal@", signal))


def test_verify():
    d = tempfile.mkdtemp(prefix="ksmtuned-units-")
    try:
        sbin = os.path.join(d, "sbin")
        os.mkdir(sbin)
        os.symlink(KSMCTL, os.path.join(sbin, "ksmctl"))
        os.symlink(KSMTUNED, os.path.join(sbin, "ksmtuned"))
        paths = []
        for unit in UNITS:
            p = os.path.join(d, unit)
            with open(p, "w") as f:
                f.write(render(unit, sbin))
            paths.append(p)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True,
                           timeout=60)
        # Only what concerns our units counts; the host's own units are not ours to judge.
        ours = [line for line in (r.stdout + r.stderr).splitlines() if re.match(r"^(ksm|ksmtuned)\.service", line)
                or any(p in line for p in paths)]
        assert r.returncode == 0 and not ours, r.stdout + r.stderr
    finally:
        shutil.rmtree(d)


def exposure(unit_path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit_path],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return float(m.group(1))


def test_exposure():
    d = tempfile.mkdtemp(prefix="ksmtuned-units-")
    try:
        for unit in UNITS:
            p = os.path.join(d, unit)
            with open(p, "w") as f:
                f.write(render(unit, "/usr/sbin"))
            score = exposure(p)
            print(f"     {unit}: exposure {score}")
            assert score <= MAX_EXPOSURE, f"{unit}: exposure {score} > {MAX_EXPOSURE}"
    finally:
        shutil.rmtree(d)


def test_installed_units_match():
    """What meson configured into the build tree is what this test rendered."""
    build = os.environ.get("BUILD_ROOT", "")
    for unit in UNITS:
        with open(os.path.join(build, "systemd", unit)) as f:
            built = f.read()
        sbindir = re.search(r"^ExecStart=(\S+)/ksm", built, re.M).group(1)
        m = re.search(r"^Type=(\S+)", built, re.M)
        assert built == render(unit, sbindir, m.group(1) if m and unit == "ksmtuned.service" else "notify"), unit
