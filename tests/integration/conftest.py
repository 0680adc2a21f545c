# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest's hooks and shared fixtures for ksmtuned's integration suites (run one file at a time by meson)."""

import pytest

from ksmtest import Libvirtd, all_skipped_is_skip


@pytest.fixture(scope="module")
def lv():
    """A real libvirtd (and virtlogd) for the tests of one file, started by hand and stopped by PID."""
    with Libvirtd() as daemon:
        # A first guest start probes QEMU (up to a minute on a fresh machine): no test should wait for that.
        daemon.create("ksmtuned-test-warmup")
        daemon.destroy("ksmtuned-test-warmup")
        yield daemon


def pytest_sessionfinish(session, exitstatus):
    all_skipped_is_skip(session, exitstatus)
