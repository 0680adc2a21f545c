# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest's hooks and shared fixtures for ksmtuned's integration suites (run one file at a time by meson)."""

import pytest

from ksmtest import Libvirtd

SKIP = 77  # meson's exit status for a skipped test


@pytest.fixture(scope="module")
def lv():
    """A real libvirtd (and virtlogd) for the tests of one file, started by hand and stopped by PID."""
    with Libvirtd() as daemon:
        # A first guest start probes QEMU (up to a minute on a fresh machine): no test should wait for that.
        daemon.create("ksmtuned-test-warmup")
        daemon.destroy("ksmtuned-test-warmup")
        yield daemon


def pytest_sessionfinish(session, exitstatus):
    """A file whose every test skipped is a skipped test for meson, not a pass."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    stats = reporter.stats
    ran = sum(len(stats.get(k, [])) for k in ("passed", "failed", "error", "xfailed", "xpassed"))
    if ran == 0 and stats.get("skipped"):
        session.exitstatus = SKIP
