# SPDX-License-Identifier: GPL-2.0-or-later
"""The Prometheus rules of contrib/prometheus: promtool checks them, and tests each alert on series named and
labelled exactly as a metrics file ksmtuned wrote (read through the strict parser) names and labels them."""

import json
import os
import re
import shutil
import subprocess
import tempfile

from ksmtest import (KSMTUNED, SOURCE_ROOT, make_ksm_dir, make_proc, meminfo_text, read, skip_or_fail,
                     write)

RULES = os.path.join(SOURCE_ROOT, "contrib", "prometheus", "ksmtuned.rules.yml")
PAGE = os.sysconf("SC_PAGE_SIZE")
TARGET = {"instance": "host1:9100", "job": "node"}  # what a scrape adds to every series of the file


def daemon_metrics():
    """The metrics file of one adjustment on a tree with everything a 6.18 kernel has, and two guests."""
    import promparse
    d = tempfile.mkdtemp(prefix="ksmtuned-alerts-")
    try:
        procs = [(3001, "qemu-system-x86", 100000, ["qemu-system-x86_64", "-name", "guest=web"]),
                 (3002, "qemu-system-x86", 100000, ["qemu-system-x86_64", "-name", "guest=cold", "-machine",
                                                    "pc,mem-merge=off"])]
        proc = make_proc(os.path.join(d, "proc"), meminfo_text(16 << 20, 1000), procs)
        write(os.path.join(proc, "3001", "ksm_stat"), "ksm_rmap_items 10\nksm_zero_pages 0\nksm_merging_pages 8\n"
              "ksm_process_profit 32128\nksm_merge_any: no\nksm_mergeable: yes\n")
        write(os.path.join(proc, "3002", "ksm_stat"), "ksm_rmap_items 0\nksm_zero_pages 0\nksm_merging_pages 0\n"
              "ksm_process_profit 0\nksm_merge_any: no\nksm_mergeable: no\n")
        write(os.path.join(proc, "37", "stat"),
              "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 500 0 0 0 25 5 1 0 5 0 0 18446744073709551615\n")
        ksm = make_ksm_dir(os.path.join(d, "ksm"), run=1, pages_shared=4, pages_sharing=4, general_profit=16384,
                           ksm_zero_pages=0)
        metrics = os.path.join(d, "ksmtuned.prom")
        conf = os.path.join(d, "ksmtuned.conf")
        write(conf, f"KSM_LIBVIRT_URI=\nKSM_KVM_EVENTS=0\nKSM_METRICS_FILE={metrics}\n")
        r = subprocess.run([KSMTUNED, "--once", "--config", conf, "--ksm-dir", ksm, "--proc", proc],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return promparse.parse(read(metrics), strict_names=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Series:
    """promtool input series, each checked to be a series of the daemon's file (name and labels exactly)."""

    def __init__(self, fams):
        self.have = {(s[0], tuple(sorted(s[1].items()))) for f in fams.values() for s in f["samples"]}

    def __call__(self, name, values, instance=None, **labels):
        assert (name, tuple(sorted(labels.items()))) in self.have, f"ksmtuned writes no series {name}{labels}"
        all_labels = dict(labels, **TARGET)
        if instance:
            all_labels["instance"] = instance
        text = ",".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
        return {"series": f"{name}{{{text}}}", "values": values}


def descriptions():
    """Each alert's description as the rules file has it (one double-quoted line each)."""
    out, name = {}, None
    for line in read(RULES).splitlines():
        m = re.match(r"\s*- alert: (\w+)$", line)
        if m:
            name = m.group(1)
        m = re.match(r'\s*description: (".*")$', line)
        if m:
            out[name] = json.loads(m.group(1))
    return out


def alert(name, at, *fired):
    """An expectation: at @at, alert @name fires for exactly @fired, each (labels but the alert's name,
    summary as the template renders it); the description's label templates are filled from the labels."""
    def desc(labels):
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), descriptions()[name])
    return {"eval_time": at, "alertname": name,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": summary, "description": desc(labels)}}
                           for labels, summary in fired]}


def labels(severity="warning", instance=None, **extra):
    return dict(extra, severity=severity, **dict(TARGET, **({"instance": instance} if instance else {})))


def promtool_tests(fams):
    s = Series(fams)
    tests = []

    # Stale: host1 adjusts every minute, then stops at 10 minutes; host2 keeps adjusting.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_last_adjustment_timestamp_seconds", "0+60x10 600x50"),
        s("ksmtuned_monitor_interval_seconds", "60x60"),
        s("ksmtuned_last_adjustment_timestamp_seconds", "0+60x60", instance="host2:9100"),
        s("ksmtuned_monitor_interval_seconds", "60x60", instance="host2:9100"),
    ], "alert_rule_test": [
        alert("KsmtunedMetricsStale", "12m"),
        alert("KsmtunedMetricsStale", "30m", (labels(), "ksmtuned on host1:9100 has not adjusted KSM for 20m 0s")),
    ]})
    # A long interval is no staleness: KSM_MONITOR_INTERVAL=600 and adjustments 10 minutes apart.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_last_adjustment_timestamp_seconds", " ".join(f"{(i // 10) * 600}" for i in range(60))),
        s("ksmtuned_monitor_interval_seconds", "600x60"),
    ], "alert_rule_test": [alert("KsmtunedMetricsStale", "55m")]})

    # ksmd: half a CPU on host1 for an hour, a tenth on host2.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_ksmd_cpu_seconds_total", "0+30x90"),
        s("ksmtuned_ksmd_cpu_seconds_total", "0+6x90", instance="host2:9100"),
    ], "alert_rule_test": [
        alert("KsmdCpuHigh", "20m"),
        alert("KsmdCpuHigh", "60m", (labels(), "ksmd on host1:9100 uses 50% of a CPU")),
    ]})

    # Merging that pays nothing: host1 runs at a loss with nothing new merged; host2 runs and merges more
    # each minute; host3 (a kernel without general_profit) runs and saves nothing; host4 is stopped.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_ksm_run", "1x150"),
        s("ksmtuned_ksm_general_profit_bytes", "-4096x150"),
        s("ksmtuned_ksm_saved_bytes", "40960x150"),
        s("ksmtuned_ksm_pages_sharing", "10x150"),
        s("ksmtuned_ksm_run", "1x150", instance="host2:9100"),
        s("ksmtuned_ksm_general_profit_bytes", "-4096+4096x150", instance="host2:9100"),
        s("ksmtuned_ksm_saved_bytes", "0+40960x150", instance="host2:9100"),
        s("ksmtuned_ksm_pages_sharing", "0+10x150", instance="host2:9100"),
        s("ksmtuned_ksm_run", "1x150", instance="host3:9100"),
        s("ksmtuned_ksm_saved_bytes", "0x150", instance="host3:9100"),
        s("ksmtuned_ksm_pages_sharing", "0x150", instance="host3:9100"),
        s("ksmtuned_ksm_run", "0x150", instance="host4:9100"),
        s("ksmtuned_ksm_general_profit_bytes", "-4096x150", instance="host4:9100"),
        s("ksmtuned_ksm_saved_bytes", "0x150", instance="host4:9100"),
        s("ksmtuned_ksm_pages_sharing", "0x150", instance="host4:9100"),
    ], "alert_rule_test": [
        alert("KsmMergingPaysNothing", "60m"),
        alert("KsmMergingPaysNothing", "2h", (labels(), "KSM on host1:9100 runs without saving memory"),
              (labels(instance="host3:9100"), "KSM on host3:9100 runs without saving memory")),
    ]})

    # A reload fails at 5 minutes on host1 and is put right at 40; host2 reloads fine.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_config_last_reload_successful", "1x5 0x35 1x20"),
        s("ksmtuned_config_last_reload_successful", "1x60", instance="host2:9100"),
    ], "alert_rule_test": [
        alert("KsmtunedConfigReloadFailed", "8m"),
        alert("KsmtunedConfigReloadFailed", "20m",
              (labels(), "ksmtuned on host1:9100 could not reload its configuration")),
        alert("KsmtunedConfigReloadFailed", "50m"),
    ]})

    # A guest that cannot merge while KSM runs, named with its reason; the mergeable one is not.
    tests.append({"interval": "1m", "input_series": [
        s("ksmtuned_ksm_run", "1x90"),
        s("ksmtuned_guest_mergeable", "0x90", guest="cold", reason="nosharepages"),
        s("ksmtuned_guest_mergeable", "1x90", guest="web"),
    ], "alert_rule_test": [
        alert("KsmGuestNotMergeable", "30m"),
        alert("KsmGuestNotMergeable", "80m", (labels("info", guest="cold", reason="nosharepages"),
                                              "Guest cold on host1:9100 cannot share memory through KSM")),
    ]})
    return tests


def run_promtool(tests, d):
    path = os.path.join(d, "ksmtuned.rules.test.yml")
    # JSON is YAML: no YAML writer needed.
    write(path, json.dumps({"rule_files": [RULES], "evaluation_interval": "1m", "tests": tests}, indent=1))
    return subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True, timeout=120)


def need_promtool():
    if not shutil.which("promtool"):
        skip_or_fail("promtool is not installed (Debian: apt-get install prometheus)")


def test_check_rules():
    need_promtool()
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout, r.stdout


def test_rules_use_what_the_daemon_writes():
    fams = daemon_metrics()
    used = set(re.findall(r"\bksmtuned_[a-z_]+", read(RULES)))
    assert used, "no ksmtuned_ metric in the rules"
    missing = used - set(fams)
    assert not missing, f"the rules use metrics ksmtuned does not write: {missing}"


def test_rules_fire_as_documented():
    need_promtool()
    fams = daemon_metrics()
    d = tempfile.mkdtemp(prefix="ksmtuned-promtool-")
    try:
        r = run_promtool(promtool_tests(fams), d)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SUCCESS" in r.stdout, r.stdout
        # The harness can fail: an alert expected that does not fire is reported.
        wrong = promtool_tests(fams)
        wrong[-1]["alert_rule_test"][0] = alert("KsmGuestNotMergeable", "30m", (labels("info", guest="web"), "x"))
        r = run_promtool(wrong, d)
        assert r.returncode != 0 and "KsmGuestNotMergeable" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
