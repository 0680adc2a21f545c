# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmctl on the real kernel KSM: start, stop, status and (only when nothing is merged) unmerge; restores KSM."""

import json
import mmap
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ksmtest import KSMCTL, REAL_KSM, RealKsm, Results, need_real_ksm, read, wait_for, write  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Counters the kernel moves by itself while ksmd runs; the rest must equal what sysfs shows.
MOVING = {"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "full_scans", "pages_scanned",
          "pages_skipped", "ksm_zero_pages", "general_profit", "stable_node_chains", "stable_node_dups",
          "saved_bytes", "pages_to_scan"}


def ksmctl(*args):
    env = {k: v for k, v in os.environ.items() if k != "KSM_MAX_KERNEL_PAGES"}
    return subprocess.run([KSMCTL, *args], capture_output=True, text=True, env=env, timeout=30)


def knob(name):
    return read(os.path.join(REAL_KSM, name)).strip()


def test_start_stop():
    with RealKsm():
        p = ksmctl("stop")
        assert p.returncode == 0 and p.stderr == "", p
        assert knob("run") == "0"
        p = ksmctl("start", "-v")
        assert p.returncode == 0, p
        assert knob("run") == "1"
        # Linux 6.18 has no max_kernel_pages: said at debug level only, never as an error.
        assert not os.path.exists(os.path.join(REAL_KSM, "max_kernel_pages"))
        assert "max_kernel_pages" in p.stderr and "fail" not in p.stderr.lower(), p.stderr
        p = ksmctl("stop")
        assert p.returncode == 0, p
        assert knob("run") == "0"


def check_status_agrees(doc):
    for key, value in doc.items():
        path = os.path.join(REAL_KSM, key)
        if not os.path.exists(path):
            continue
        raw = read(path).strip()
        if key == "advisor_mode":
            raw = raw.split("[", 1)[1].split("]", 1)[0]
            assert value == raw, (key, value, raw)
        elif key not in MOVING:
            assert value == int(raw), (key, value, raw)
    for name in os.listdir(REAL_KSM):
        if name in ("run", "pages_to_scan", "sleep_millisecs", "pages_shared", "pages_sharing", "pages_unshared",
                    "pages_volatile", "full_scans", "max_page_sharing", "merge_across_nodes", "use_zero_pages",
                    "general_profit", "ksm_zero_pages", "smart_scan", "advisor_mode"):
            assert name in doc, f"{name} is in {REAL_KSM} but not in the status"
    assert doc["page_size"] == PAGE_SIZE
    assert doc["running"] is (doc["run"] == 1)


def test_status_json():
    with RealKsm():
        for verb, run in (("start", 1), ("stop", 0)):
            assert ksmctl(verb).returncode == 0
            p = ksmctl("status", "--json")
            assert p.returncode == 0 and p.stderr == "", p
            doc = json.loads(p.stdout)
            assert doc["run"] == run and doc["running"] is (run == 1), doc
            check_status_agrees(doc)
            p = ksmctl("status")
            assert p.returncode == 0, p
            assert f"(run = {run})" in p.stdout, p.stdout


def test_status_unprivileged():
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KSMCTL, "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    check_status_agrees(json.loads(p.stdout))


def test_unmerge_when_nothing_merged():
    with RealKsm():
        assert ksmctl("stop").returncode == 0
        if int(knob("pages_sharing")) != 0 or int(knob("ksm_zero_pages") if os.path.exists(
                os.path.join(REAL_KSM, "ksm_zero_pages")) else 0) != 0:
            print("  (pages are merged on this machine: not unmerging them)", flush=True)
            return
        p = ksmctl("unmerge")
        assert p.returncode == 0, p
        assert knob("run") == "2"


def test_status_sees_merging():
    """16 MiB of identical mergeable pages: ksmctl start lets ksmd merge them, status shows the saving."""
    size = 16 << 20
    with RealKsm():
        before = int(knob("pages_sharing"))
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            region.write(b"\x5a" * size)
            region.madvise(mmap.MADV_MERGEABLE)
            if "[scan-time]" in (read(os.path.join(REAL_KSM, "advisor_mode")) if os.path.exists(
                    os.path.join(REAL_KSM, "advisor_mode")) else ""):
                write(os.path.join(REAL_KSM, "advisor_mode"), "none\n")
            write(os.path.join(REAL_KSM, "pages_to_scan"), "1000\n")
            write(os.path.join(REAL_KSM, "sleep_millisecs"), "10\n")
            assert ksmctl("start").returncode == 0
            assert wait_for(lambda: int(knob("pages_sharing")) >= before + size // PAGE_SIZE // 2, timeout=30), \
                knob("pages_sharing")
            assert ksmctl("stop").returncode == 0  # the counters stand still from here
            p = ksmctl("status", "--json")
            assert p.returncode == 0, p
            doc = json.loads(p.stdout)
            sharing = int(knob("pages_sharing"))
            assert doc["pages_sharing"] == sharing, (doc, sharing)
            assert doc["saved_bytes"] >= sharing * PAGE_SIZE >= size // 2, doc
            assert doc["scan_pages_per_sec"] == 100000, doc
            if "general_profit" in doc:
                assert doc["general_profit"] == int(knob("general_profit")) and doc["general_profit"] > 0, doc
            p = ksmctl("status")
            assert p.returncode == 0, p
            assert f"pages_sharing:       {sharing}\n" in p.stdout, p.stdout
        finally:
            region.close()
            # With the pages gone, a few scans drop the stale counters, so nothing looks merged afterwards.
            write(os.path.join(REAL_KSM, "run"), "1\n")
            wait_for(lambda: int(knob("pages_sharing")) <= before, timeout=10)


def main():
    need_real_ksm()
    if not KSMCTL or not os.access(KSMCTL, os.X_OK):
        print(f"KSMCTL={KSMCTL!r} is not an executable", flush=True)
        sys.exit(1)
    r = Results("ksmctl on the real kernel")
    r.run(test_start_stop)
    r.run(test_status_json)
    r.run(test_status_unprivileged)
    r.run(test_unmerge_when_nothing_merged)
    r.run(test_status_sees_merging)
    r.finish()


if __name__ == "__main__":
    main()
