#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run Debian's original ksmtuned in a private mount and PID namespace, and report its adjustments.

    original_ns.py fake|real TMP DEB

Used by bench/benchlib.py (OriginalNs), not by hand. It re-executes itself as PID 1 of the namespace
with tests/integration/test_differential.py's helpers (the same as run.py and the differential test),
so the script and everything it forks die with the namespace, and its mounts vanish with it:
- /etc is an overlay whose ksmtuned.conf is TMP/ksmtuned.conf (the host's /etc is untouched);
- fake: /sys/kernel/mm/ksm is a tmpfs and /proc/meminfo a fake (16 GiB, nearly all free, so it stops KSM
  at each adjustment); an adjustment is seen as a new mtime of the fake `run` file (nanoseconds);
- real: the real KSM and the real /proc/meminfo; an adjustment is seen as a new "KSMCTL start" or "stop
  ksm" line in its DEBUG log (polled every 10 ms).
It prints "ready PID" (the script's loop, PID in the namespace) once the loop waits, then "adjust NS"
(wall-clock nanoseconds) per adjustment, until its standard input closes; then it stops the script by PID
and undoes its mounts.
"""

import os
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import ksmtest  # noqa: E402
import test_differential as td  # noqa: E402


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("fake", "real"):
        sys.exit(__doc__)
    mode, tmp, deb = sys.argv[1:]
    if os.environ.get("KSMDIFF_INNER") != "1":
        td.reexec_in_namespace({})
    mounts = orig = None
    try:
        script = td.extract_original(deb, os.path.join(tmp, "original"))
        mounts = td.Mounts(tmp)
        if mode == "real":
            # Mounts fakes KSM and meminfo for the differential test; here the script must see the real ones.
            for m in ("/proc/meminfo", ksmtest.REAL_KSM):
                subprocess.run(["umount", m], check=True)
                mounts.mounted.remove(m)
        else:
            ksmtest.make_ksm_dir(ksmtest.REAL_KSM)
        ksmtest.write(td.ETC_CONF, ksmtest.read(os.path.join(tmp, "ksmtuned.conf")))
        run_file = os.path.join(ksmtest.REAL_KSM, "run")
        last = os.stat(run_file).st_mtime_ns if mode == "fake" else 0
        orig = td.Original(script, tmp, debug=True)
        print(f"ready {orig.loop}", flush=True)
        while True:
            r, _, _ = select.select([sys.stdin], [], [], 0.01)
            if r and not sys.stdin.readline():
                break
            if mode == "fake":
                m = os.stat(run_file).st_mtime_ns
                if m != last:
                    last = m
                    print(f"adjust {m}", flush=True)
            else:
                n = orig.adjustments()
                if n > last:
                    last = n
                    print(f"adjust {time.time_ns()}", flush=True)
            if not os.path.exists(f"/proc/{orig.loop}"):
                print("the original's loop exited", file=sys.stderr, flush=True)
                break
    finally:
        if orig:
            orig.stop()
        if mounts:
            mounts.close()


if __name__ == "__main__":
    main()
