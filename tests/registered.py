# SPDX-License-Identifier: GPL-2.0-or-later
"""Every tests/integration/test_*.py and tests/packaging/test_*.py is registered in tests/meson.build: a file
left off its lists would never run, and nothing would say so.

Usage: registered.py TESTS_DIR FILE..."""

import glob
import os
import sys

tests_dir, registered = sys.argv[1], set(sys.argv[2:])
found = {os.path.basename(p) for d in ("integration", "packaging") for p in glob.glob(os.path.join(tests_dir, d, "test_*.py"))}
missing, stale = sorted(found - registered), sorted(registered - found)
for name in missing:
    print(f"not registered in tests/meson.build, so never run: {name}")
for name in stale:
    print(f"registered in tests/meson.build but missing: {name}")
print(f"registered: {len(found & registered)} passed, {len(missing) + len(stale)} failed")
sys.exit(1 if missing or stale else 0)
