# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest's hooks for the packaging suite (run one file at a time by meson)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
from ksmtest import all_skipped_is_skip  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    all_skipped_is_skip(session, exitstatus)
