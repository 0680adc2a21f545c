# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmctl guests and the per-guest metrics on temporary KSM and /proc trees: every kernel generation, the
same guests as ksmtuned finds, totals that agree with ksmctl status, a gone guest gone from the metrics."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

from ksmtest import (KSMCTL, KSMTUNED, Daemon, make_ksm_dir, make_proc, meminfo_text, read, wait_for,
                     write)

PAGE = os.sysconf("SC_PAGE_SIZE")
FIXTURES = os.environ.get("FIXTURES") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "fixtures")
GIB_KB = 1024 * 1024


def fixture(name):
    return read(os.path.join(FIXTURES, "ksm-stat", name))


def stat(rmap, merging, zero, mergeable, merge_any=False):
    profit = (merging + zero) * PAGE - rmap * 64
    return (f"ksm_rmap_items {rmap}\nksm_zero_pages {zero}\nksm_merging_pages {merging}\n"
            f"ksm_process_profit {profit}\nksm_merge_any: {'yes' if merge_any else 'no'}\n"
            f"ksm_mergeable: {'yes' if mergeable else 'no'}\n")


class Tree:
    """A KSM directory and a /proc with three libvirt guests as Linux 6.18 shows them: web and db share 1000
    pages with each other (1000 KSM pages, 1000 sharers), db has 5 zero pages, cold is nosharepages."""

    def __init__(self, conf=""):
        self.dir = tempfile.mkdtemp(prefix="ksmtuned-guests-")
        procs = [
            (1, "systemd", 5000, ["/sbin/init"]),
            (2001, "qemu-system-x86", 200000, ["/usr/bin/qemu-system-x86_64", "-name", "guest=web,debug-threads=on",
                                               "-machine", "pc-i440fx-7.2,usb=off"]),
            (2002, "qemu-system-x86", 300000, ["/usr/bin/qemu-system-x86_64", "-name", "guest=db,debug-threads=on",
                                               "-enable-kvm"]),
            (2003, "qemu-system-x86", 100000, ["/usr/bin/qemu-system-x86_64", "-name", "guest=cold,debug-threads=on",
                                               "-machine", "pc-i440fx-7.2,usb=off,mem-merge=off"]),
            (2004, "bash", 700, ["bash"]),
        ]
        self.proc = make_proc(os.path.join(self.dir, "proc"), meminfo_text(16 * GIB_KB, 8 * GIB_KB), procs)
        write(self.pid_file(2001, "ksm_stat"), stat(1010, 1000, 0, True))
        write(self.pid_file(2002, "ksm_stat"), stat(1020, 1000, 5, True))
        write(self.pid_file(2003, "ksm_stat"), stat(0, 0, 0, False))
        write(self.pid_file(1, "ksm_stat"), stat(0, 0, 0, False))
        self.ksm = make_ksm_dir(os.path.join(self.dir, "ksm"), run=1, pages_shared=1000, pages_sharing=1000,
                                ksm_zero_pages=5, general_profit=(1000 + 5) * PAGE - (1010 + 1020) * 64)
        self.conf = os.path.join(self.dir, "ksmtuned.conf")
        write(self.conf, "KSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\n" + conf)

    def pid_file(self, pid, name):
        return os.path.join(self.proc, str(pid), name)

    def ksmctl(self, *args, check=True):
        r = subprocess.run([KSMCTL, "-d", self.ksm, "--proc", self.proc, *args], capture_output=True, text=True,
                           timeout=30)
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def guests(self, *extra):
        return self.ksmctl("guests", "--config", self.conf, *extra)

    def guests_json(self, *extra):
        return json.loads(self.guests("--json", *extra).stdout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def by_name(doc):
    return {g["name"]: g for g in doc["guests"]}


def test_json_figures():
    with Tree() as t:
        doc = t.guests_json()
        assert [g["name"] for g in doc["guests"]] == ["db", "web", "cold"], doc  # by memory saved
        g = by_name(doc)
        assert g["web"]["pid"] == 2001 and g["web"]["name_source"] == "cmdline"
        assert g["web"]["resident_bytes"] == 200000 * 1024
        assert g["web"]["merged_bytes"] == 1000 * PAGE
        assert g["db"]["zero_page_bytes"] == 5 * PAGE
        assert g["db"]["saved_bytes"] == 1005 * PAGE
        assert g["web"]["profit_bytes"] == 1000 * PAGE - 1010 * 64
        assert g["web"]["mergeable"] is True and "reason" not in g["web"]
        assert g["cold"]["mergeable"] is False
        assert g["cold"]["reason"] == "nosharepages", g["cold"]
        assert "<memoryBacking><nosharepages/>" in g["cold"]["reason_text"]
        assert g["cold"]["merged_bytes"] == 0
        assert doc["page_size"] == PAGE
        assert 1 not in [x["pid"] for x in doc["guests"]] and 2004 not in [x["pid"] for x in doc["guests"]]


def test_totals_agree_with_status():
    with Tree() as t:
        doc = t.guests_json()
        status = json.loads(t.ksmctl("status", "--json", "--sample=0").stdout)
        tot = doc["totals"]
        assert tot["guests"] == 3
        assert tot["resident_bytes"] == 600000 * 1024
        # Every merged page of KSM belongs to a guest here: the sums are KSM's own figures.
        assert tot["merged_bytes"] == (status["pages_shared"] + status["pages_sharing"]) * status["page_size"]
        assert tot["zero_page_bytes"] == status["ksm_zero_pages"] * status["page_size"]
        assert tot["profit_bytes"] - status["pages_shared"] * status["page_size"] == status["general_profit"]
        assert doc["ksm"]["saved_bytes"] == status["saved_bytes"]
        assert doc["ksm"]["general_profit"] == status["general_profit"]
        table = t.guests().stdout
        assert re.search(r"^\s+total\s+3 guests\s+585\.9 MiB\s+", table, re.M), table
        assert f"{status['saved_bytes'] / 1048576:.1f} MiB saved" in table, table


def test_table():
    with Tree() as t:
        out = t.guests().stdout
        lines = out.splitlines()
        assert lines[0].split() == ["PID", "GUEST", "RESIDENT", "MERGED", "ZERO", "PROFIT", "MERGEABLE"], out
        assert lines[1].split()[:2] == ["2002", "db"], out
        assert re.search(r"^\s+2001\s+web\s+195\.3 MiB\s+\S+ \S+\s+0 B\s+\S+ \S+\s+yes$", out, re.M), out
        assert re.search(r"^\s+2003\s+cold\s+.*no: libvirt's <memoryBacking><nosharepages/>", out, re.M), out


def test_older_kernels():
    """6.1 (ksm_stat with rmap items, merged pages in their own file), 5.19 (ksm_merging_pages only), and
    before (nothing): what the kernel lacks is absent in JSON and '-' in the table, never 0."""
    with Tree() as t:
        write(t.pid_file(2001, "ksm_stat"), fixture("rmap-only.ksm_stat"))
        write(t.pid_file(2001, "ksm_merging_pages"), "300\n")
        os.unlink(t.pid_file(2002, "ksm_stat"))
        write(t.pid_file(2002, "ksm_merging_pages"), fixture("merging-pages-only"))
        os.unlink(t.pid_file(2003, "ksm_stat"))
        doc = t.guests_json()
        g = by_name(doc)
        assert g["web"]["merged_bytes"] == 300 * PAGE and g["web"]["rmap_items"] == 2048
        assert "zero_page_bytes" not in g["web"] and "profit_bytes" not in g["web"], g["web"]
        assert g["db"]["merged_bytes"] == 512 * PAGE and "rmap_items" not in g["db"]
        for key in ("merged_bytes", "zero_page_bytes", "profit_bytes", "saved_bytes", "mergeable", "rmap_items"):
            assert key not in g["cold"], g["cold"]
        assert g["web"]["mergeable"] is True  # merged pages prove it
        assert "profit_bytes" not in doc["totals"] and doc["totals"]["merged_bytes"] == 812 * PAGE
        out = t.guests().stdout
        assert re.search(r"^\s+2003\s+cold\s+97\.7 MiB\s+-\s+-\s+-\s+-$", out, re.M), out
        assert re.search(r"^\s+2002\s+db\s+\S+ MiB\s+2\.0 MiB\s+-\s+-\s+yes$", out, re.M), out

        # No per-process file at all (before 5.19), and no ksm_zero_pages nor general_profit in KSM's directory.
        for pid in (2001, 2002):
            for f in ("ksm_stat", "ksm_merging_pages"):
                if os.path.exists(t.pid_file(pid, f)):
                    os.unlink(t.pid_file(pid, f))
        for f in ("ksm_zero_pages", "general_profit"):
            if os.path.exists(os.path.join(t.ksm, f)):
                os.unlink(os.path.join(t.ksm, f))
        doc = t.guests_json()
        for g in doc["guests"]:
            assert set(g) == {"pid", "name", "name_source", "resident_bytes"}, g
        assert set(doc["totals"]) == {"guests", "resident_bytes"}, doc["totals"]
        assert "ksm_zero_pages" not in doc["ksm"] and "general_profit" not in doc["ksm"], doc["ksm"]
        assert "general_profit" not in t.guests().stdout


def test_no_ksm_directory():
    """A kernel without KSM: the guests are listed all the same, without KSM's line, and the exit status is 0."""
    with Tree() as t:
        shutil.rmtree(t.ksm)
        r = t.guests("--json")
        doc = json.loads(r.stdout)
        assert len(doc["guests"]) == 3 and "ksm" not in doc, doc
        assert f"Failed to open {t.ksm}" in r.stderr and "ignoring" in r.stderr, r.stderr
        out = t.guests().stdout
        assert "total" in out and "KSM, all processes" not in out, out
        r = t.ksmctl("status", check=False)
        assert r.returncode == 1, r


def test_mergeable_from_smaps():
    """A kernel whose ksm_stat has no ksm_mergeable line: smaps' VmFlags tell, and the reason is named."""
    with Tree() as t:
        write(t.pid_file(2001, "ksm_stat"), "ksm_rmap_items 0\nksm_merging_pages 0\n")
        write(t.pid_file(2001, "smaps"), fixture("mergeable.smaps"))
        write(t.pid_file(2003, "ksm_stat"), "ksm_rmap_items 0\nksm_merging_pages 0\n")
        write(t.pid_file(2003, "smaps"), fixture("not-mergeable.smaps"))
        g = by_name(t.guests_json())
        assert g["web"]["mergeable"] is True, g["web"]
        assert g["cold"]["mergeable"] is False and g["cold"]["reason"] == "nosharepages", g["cold"]


def test_names_and_reasons():
    with Tree() as t:
        d = os.path.join(t.proc, "2005")
        os.makedirs(d)
        write(os.path.join(d, "comm"), "qemu-system-x86\n")
        write(os.path.join(d, "statm"), "3 1 1 1 0 1 0\n")
        write(os.path.join(d, "cmdline"), "qemu-system-x86_64\0-machine\0pc,mem-merge=off\0-m\0512\0")
        write(os.path.join(d, "ksm_stat"), stat(0, 0, 0, False))
        d = os.path.join(t.proc, "2006")
        os.makedirs(d)
        write(os.path.join(d, "comm"), "kvm\n")
        write(os.path.join(d, "statm"), "3 1 1 1 0 1 0\n")
        write(os.path.join(d, "cmdline"), "kvm\0-name\0we\"ird\\na,,me\0")
        write(os.path.join(d, "ksm_stat"), stat(0, 0, 0, False))
        g = {x["pid"]: x for x in t.guests_json()["guests"]}
        assert g[2005]["name"] == "qemu-system-x86" and g[2005]["name_source"] == "comm"
        assert g[2005]["reason"] == "mem-merge-off" and "-machine mem-merge=off" in g[2005]["reason_text"]
        assert g[2006]["name"] == 'we"ird\\na,me', g[2006]
        assert g[2006]["reason"] == "not-marked" and "not marked mergeable" in g[2006]["reason_text"]


def dry_run_count(t):
    r = subprocess.run([KSMTUNED, "--once", "--dry-run", "--debug", "--config", t.conf, "--ksm-dir", t.ksm,
                        "--proc", t.proc], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = re.search(r"\((\d+) guests\)", r.stderr)
    assert m, r.stderr
    return int(m.group(1))


def test_same_guests_as_ksmtuned():
    """The configuration (main file and drop-ins) decides for both programs, through the same code."""
    cases = [
        ("", [2001, 2002, 2003]),
        ("KSM_GUEST_COMM=\nKSM_GUEST_CMDLINE='^/usr/bin/qemu-system.*-enable-kvm'\n", [2002]),
        ("KSM_GUEST_COMM=^bash$\n", [2004]),
        ("KSM_GUEST_COMM=\n", []),
    ]
    for conf, pids in cases:
        with Tree(conf) as t:
            got = sorted(g["pid"] for g in t.guests_json()["guests"])
            assert got == pids, (conf, got)
            assert dry_run_count(t) == len(pids), conf
    # A drop-in overrides the main file for both.
    with Tree() as t:
        write(t.conf + ".d/50-cmdline.conf", "KSM_GUEST_COMM=\nKSM_GUEST_CMDLINE=guest=web\n")
        assert [g["pid"] for g in t.guests_json()["guests"]] == [2001]
        assert dry_run_count(t) == 1


def test_config_errors():
    with Tree("KSM_GUEST_COMM='^(qemu'\n") as t:
        r = t.ksmctl("guests", "--config", t.conf, check=False)
        assert r.returncode == 1 and r.stdout == "", r
        assert f"{t.conf}:3: KSM_GUEST_COMM='^(qemu': invalid regular expression" in r.stderr, r.stderr
    with Tree("KSM_MONITOR_INTERVAL=soon\n") as t:
        r = t.ksmctl("guests", "--config", t.conf, check=False)
        assert r.returncode == 1, r
        assert f"{t.conf}:3: KSM_MONITOR_INTERVAL=soon" in r.stderr, r.stderr
    with Tree() as t:
        r = t.ksmctl("status", "--config", t.conf, check=False)
        assert r.returncode == 1 and "--config applies only to guests" in r.stderr, r.stderr
        r = t.ksmctl("guests", "--config=", check=False)
        assert r.returncode == 1 and "--config needs a file" in r.stderr, r.stderr
        # A missing configuration file means the defaults, as for ksmtuned.
        r = t.ksmctl("guests", "--json", "--config", os.path.join(t.dir, "none.conf"))
        assert len(json.loads(r.stdout)["guests"]) == 3


def test_per_guest_metrics():
    import promparse
    with Tree() as t:
        metrics = os.path.join(t.dir, "ksmtuned.prom")
        write(t.conf, read(t.conf) + f"KSM_METRICS_FILE={metrics}\n")
        with Daemon([KSMTUNED, "--debug", "--config", t.conf, "--ksm-dir", t.ksm, "--proc", t.proc]) as d:
            assert wait_for(lambda: os.path.exists(metrics)), d.output()
            fams = promparse.parse(read(metrics), strict_names=True)

            def value(name, **labels):
                got = [s[2] for s in fams[name]["samples"] if s[1] == labels]
                assert len(got) == 1, (name, labels, fams.get(name))
                return got[0]

            assert value("ksmtuned_guest_resident_bytes", guest="web") == 200000 * 1024
            assert value("ksmtuned_guest_merged_bytes", guest="web") == 1000 * PAGE
            assert value("ksmtuned_guest_zero_page_bytes", guest="db") == 5 * PAGE
            assert value("ksmtuned_guest_profit_bytes", guest="db") == 1005 * PAGE - 1020 * 64
            assert value("ksmtuned_guest_mergeable", guest="web") == 1
            assert value("ksmtuned_guest_mergeable", guest="cold", reason="nosharepages") == 0
            assert value("ksmtuned_guest_processes", guest="cold") == 1
            assert value("ksmtuned_guests_unlisted") == 0
            assert value("ksmtuned_config_last_reload_successful") == 1
            assert value("ksmtuned_monitor_interval_seconds") == 60
            for fam in fams.values():
                for _, labels, _ in fam["samples"]:
                    assert "pid" not in labels, fam
            # The guest series agree with ksmctl guests.
            doc = t.guests_json()
            for g in doc["guests"]:
                assert value("ksmtuned_guest_merged_bytes", guest=g["name"]) == g["merged_bytes"]

            # cold exits: gone from the file written by the next adjustment.
            shutil.rmtree(os.path.join(t.proc, "2003"))
            d.signal(signal.SIGUSR1)

            def next_file():
                f = promparse.parse(read(metrics), strict_names=True)
                done = [s for s in f["ksmtuned_adjustments_total"]["samples"] if s[1] == {"reason": "signal"}]
                return f if done and done[0][2] == 1 else None
            fams = wait_for(next_file)
            assert fams, d.output()
            names = {s[1]["guest"] for fam in fams.values() for s in fam["samples"] if "guest" in s[1]}
            assert names == {"web", "db"}, names

            # A reload that fails: the gauge says so, the old configuration (and file) stays.
            write(t.conf, read(t.conf) + "KSM_NPAGES_MAX=lots\n")
            d.signal(signal.SIGHUP)

            def reload_failed():
                f = promparse.parse(read(metrics), strict_names=True)
                s = f["ksmtuned_config_last_reload_successful"]["samples"]
                return f if s[0][2] == 0 else None
            fams = wait_for(reload_failed)
            assert fams, d.output()
            assert "Configuration not reloaded" in d.output()
            write(t.conf, read(t.conf).replace("KSM_NPAGES_MAX=lots\n", ""))
            d.signal(signal.SIGHUP)
            assert wait_for(lambda: not reload_failed()), d.output()


def test_same_name_guests_share_series():
    import promparse
    with Tree() as t:
        # Two processes without -name: both are "qemu-system-x86"; their figures add up, no PID tells them apart.
        for pid in (2001, 2002):
            write(t.pid_file(pid, "cmdline"), "qemu-system-x86_64\0-enable-kvm\0")
        metrics = os.path.join(t.dir, "ksmtuned.prom")
        write(t.conf, read(t.conf) + f"KSM_METRICS_FILE={metrics}\n")
        r = subprocess.run([KSMTUNED, "--once", "--config", t.conf, "--ksm-dir", t.ksm, "--proc", t.proc],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        fams = promparse.parse(read(metrics), strict_names=True)
        s = {x[1]["guest"]: x[2] for x in fams["ksmtuned_guest_resident_bytes"]["samples"]}
        assert s == {"qemu-system-x86": 500000 * 1024, "cold": 100000 * 1024}, s
        s = {x[1]["guest"]: x[2] for x in fams["ksmtuned_guest_processes"]["samples"]}
        assert s == {"qemu-system-x86": 2, "cold": 1}, s
