# SPDX-License-Identifier: GPL-2.0-or-later
"""Table 3: what each tuning policy gets out of the real KSM, and what ksmd spends on it.

Workload: --merge-procs processes (tests/helpers/fake-guest) of --guest-mib MiB each, marked mergeable, 90 %
of their pages holding content common to all of them (page i the same in every process) and 10 % unique,
each creating a KVM VM before it maps and fills its memory (--kvm-first, as a VMM does: the kernel's uevent
tells ksmtuned a VM started before there is anything to merge); named like QEMU (comm qemu-system-x86, argv
qemu-system-x86_64 ... -enable-kvm) so both programs count them as guests. At --late-at seconds one more
such process starts (the late arrival).

This host has no memory pressure with a few GiB of guests, so every tuner is forced to run KSM with
KSM_THRES_COEF=100: the threshold is all of memory, free memory is always below it, the tuners boost.

Before each policy: run=2 (unmerge everything, reset the counters), the kernel's default knobs
(advisor_mode none, pages_to_scan 100, sleep_millisecs 20, smart_scan 1, run 0); then the policy starts,
then the workload (t = 0 when the workload is launched). Sampled every --step seconds: pages_sharing
(saved memory), the pages of the first processes merged (sum of /proc/PID/ksm_merging_pages), the late
arrival's, ksmd's CPU time (utime + stime of the kernel thread ksmd). The real KSM is restored at the end.

--runs N runs the whole list of policies N times, round-robin. Issue 17's targets for ours-adaptive are
judged against the fixed-fastest rows of the same invocation (see issue17_verdict()).
"""

import json
import os
import statistics
import subprocess
import time

import benchlib as bl
from benchlib import ksmtest

MILESTONES = (5, 10, 30, 60, 120, 180)
FORCE = "KSM_THRES_COEF=100\n"

# The reference ("fixed fastest"): the adaptive policy's fastest rate, 10,000 pages every 10 ms, all the time,
# set before the workload starts; what merging costs when nothing decides anything.
FASTEST = (("advisor_mode", "none"), ("pages_to_scan", "10000"), ("sleep_millisecs", "10"), ("run", "1"))

# name -> (what it is, extra configuration of ours, or a special kind)
POLICIES = {
    "fixed-fastest": ("no tuner: pages_to_scan 10000, sleep_millisecs 10, run 1 (advisor_mode none), written "
                      "before the workload starts", None),
    "original": ("the original script (its namespace, default 60 s interval), KSM_THRES_COEF=100", None),
    "ours": ("ours, default settings, KSM_THRES_COEF=100", ""),
    "ours-modern": ("ours, KSM_FREE_MEMORY=available, KSM_COMMITTED=rss-minus-merged",
                    "KSM_FREE_MEMORY=available\nKSM_COMMITTED=rss-minus-merged\n"),
    "ours-advisor": ("ours driving the kernel's advisor, KSM_ADVISOR=scan-time", "KSM_ADVISOR=scan-time\n"),
    "kernel-advisor": ("the kernel's advisor alone: advisor_mode=scan-time, run=1, no tuner", None),
    "ours-adaptive": ("ours, KSM_POLICY=adaptive", "KSM_POLICY=adaptive\n"),
    # Not in the default set: the advisor switched on once the workload is there, not before it.
    "kernel-advisor-after": ("the kernel's advisor alone, switched on (advisor_mode=scan-time, run=1) once the "
                             "workload is ready", None),
}
DEFAULT_POLICIES = "fixed-fastest,original,ours,ours-modern,ours-advisor,kernel-advisor,ours-adaptive"


def policy_available(bins, name, tmp):
    """None if ours accepts the policy's configuration, else why not (an unknown or invalid key)."""
    extra = POLICIES[name][1]
    if not extra:
        return None
    conf = os.path.join(tmp, f"check-{name}.conf")
    ksmtest.write(conf, FORCE + extra)
    ksm_dir = ksmtest.make_ksm_dir(os.path.join(tmp, f"check-{name}-ksm"))
    r = subprocess.run([bins["ksmtuned"], "--config", conf, "--ksm-dir", ksm_dir, "--once", "--dry-run"],
                       capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    keys = [line.split("=", 1)[0] for line in extra.splitlines()]
    bad = [line for line in out.splitlines() if any(k in line for k in keys)
           and ("unknown" in line or "invalid" in line or "not " in line or "ignoring" in line)]
    if r.returncode != 0 or bad:
        return (bad[0] if bad else out.strip().splitlines()[-1] if out.strip() else f"exit {r.returncode}")
    return None


def foreign_ksm_users(ours_pids):
    """Processes other than ours with KSM state (rmap items or merged pages): another test at work."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in ours_pids:
            continue
        try:
            text = ksmtest.read(f"/proc/{d}/ksm_stat")
        except OSError:
            continue
        vals = dict((k, v.split()[0]) for k, _, v in (line.partition(" ") for line in text.splitlines()) if v)
        if int(vals.get("ksm_rmap_items", "0")) > 0 or int(vals.get("ksm_merging_pages", "0")) > 0:
            try:
                comm = ksmtest.read(f"/proc/{d}/comm").strip()
            except OSError:
                comm = "?"
            out.append(f"{d} ({comm})")
    return out


def merging_pages(pid):
    try:
        return int(ksmtest.read(f"/proc/{pid}/ksm_merging_pages"))
    except (OSError, ValueError):
        return 0


class Workload:
    def __init__(self, fake_guest, mib):
        self.fake_guest = fake_guest
        self.mib = mib
        self.procs = []

    def spawn(self):
        # --kvm-first: the VM is announced before the memory exists, as with a VMM.
        p = subprocess.Popen(["qemu-system-x86_64", str(self.mib), "--mergeable", "--fill", "shared90",
                              "--kvm-first", "-enable-kvm", "-name", "bench"], executable=self.fake_guest,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             env=dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86"))
        self.procs.append(p)
        return p

    def ready(self, p):
        import select
        # Filling takes longer the larger the guest, and longer with several filling at once.
        r, _, _ = select.select([p.stdout], [], [], 120 + self.mib / 16)
        if not r or p.stdout.readline() != b"ready\n":
            raise RuntimeError(f"fake-guest {p.pid} did not start")

    def stop(self):
        for p in self.procs:
            bl.stop_pid(p)
        self.procs = []


class Policy:
    """One tuner (or none) on the real KSM, started before the workload, stopped before it goes."""

    def __init__(self, name, args, bins, deb, tmp):
        self.name = name
        self.ours = self.orig = None
        extra = POLICIES[name][1]
        if name == "original":
            self.orig = bl.OriginalNs(args.build, os.path.join(tmp, "orig-" + name), "real",
                                      "KSM_MONITOR_INTERVAL=60\n" + FORCE, deb)
        elif name == "kernel-advisor":
            self.advisor_on()
        elif name == "fixed-fastest":
            for k, v in FASTEST:
                bl.ksm_write(k, v)
        elif name == "kernel-advisor-after":
            pass  # see workload_ready()
        else:
            conf = os.path.join(tmp, f"{name}.conf")
            ksmtest.write(conf, FORCE + extra)
            self.ours = bl.Ours(bins["ksmtuned"], conf)
            if not self.ours.wait_line(bl.is_adjustment, 0, 15):
                self.ours.stop()
                raise RuntimeError(f"{name}: no start-up adjustment:\n{self.ours.text()}")

    @staticmethod
    def advisor_on():
        bl.ksm_write("advisor_mode", "scan-time")
        bl.ksm_write("run", "1")

    def workload_ready(self):
        if self.name == "kernel-advisor-after":
            self.advisor_on()

    def pids(self):
        return {self.ours.pid} if self.ours else set()

    def adjustments(self, t0):
        if self.ours:
            return [(t - t0, bl.adjustment_reason(line)) for t, line in self.ours.adjustments()]
        if self.orig:
            with self.orig.cond:
                return [(t - t0, "interval") for t in self.orig.adjusts]
        return []

    def stop(self):
        if self.ours:
            self.ours.stop()
        if self.orig:
            self.orig.stop()


def run_policy(name, args, bins, deb, tmp):
    n, mib = args.merge_guests, args.guest_mib
    pages = mib * 1024 * 1024 // bl.PAGE
    dup = pages * 90 // 100                 # each process's pages that duplicate the others'
    target = n * dup * 0.9                   # 90 % of the merged pages (pages_shared + pages_sharing)
    late_target = dup * 0.9
    late_at = args.late_at if args.late_at < args.duration else args.duration * 2 / 3
    ksmd = bl.ksmd_pid()
    if not ksmd:
        raise RuntimeError("no ksmd kernel thread")
    bl.ksm_reset()
    foreign = foreign_ksm_users(set())
    work = Workload(bins["fake-guest"], mib)
    kvm = bl.KvmEvents()
    fixed = {k: bl.ksm_read(k) for k in ("max_page_sharing", "merge_across_nodes", "use_zero_pages", "smart_scan")
             if os.path.exists(os.path.join(bl.REAL_KSM, k))}
    top = 0
    policy = None
    samples = []
    late = None
    interfered = []
    try:
        policy = Policy(name, args, bins, deb, tmp)
        t0 = bl.now()
        cpu0 = bl.cpu_seconds(ksmd)
        # Cumulative since boot (pages_scanned: Linux 6.7+): kept as deltas from here.
        count0 = {k: counter(k) for k in ("pages_scanned", "full_scans")}
        first = [work.spawn() for _ in range(n)]
        for p in first:
            work.ready(p)
        ready = bl.now() - t0
        policy.workload_ready()
        t90 = cpu90 = late90 = scanned90 = None
        late_t = None
        next_print = args.print_every
        tick = 0
        while True:
            tick += 1
            target_t = t0 + tick * args.step
            if target_t - t0 > args.duration + 1e-6:
                break
            time.sleep(max(0.0, target_t - bl.now()))
            t = bl.now() - t0
            if late is None and t >= late_at:
                late_t = t
                late = work.spawn()
            per = [merging_pages(p.pid) for p in first]
            merged = sum(per)
            lm = merging_pages(late.pid) if late else 0
            s = {"t": t, "cpu": bl.cpu_seconds(ksmd) - cpu0, "merged": merged, "late": lm,
                 "sharing": int(bl.ksm_read("pages_sharing")), "shared": int(bl.ksm_read("pages_shared")),
                 "run": bl.ksm_read("run"), "pages": bl.ksm_read("pages_to_scan"),
                 "sleep": bl.ksm_read("sleep_millisecs"), "advisor": bl.ksm_read("advisor_mode")}
            for k, v0 in count0.items():
                v = counter(k)
                s[k] = v - v0 if v is not None and v0 is not None else None
            samples.append(s)
            if t90 is None and merged >= target:
                t90, cpu90, scanned90 = t, s["cpu"], s["pages_scanned"]
            if late is not None and late90 is None and lm >= late_target:
                late90 = t - late_t
            # Every tuner forces KSM on here: run going back to 0 or 2 means something else wrote it.
            on_since = policy.orig.adjusts[0] - t0 if policy.orig and policy.orig.adjusts else None
            if s["run"] != "1" and (name != "original" or (on_since is not None and t > on_since + 1)) and (
                    name != "kernel-advisor-after" or t > ready + 1):
                interfered.append(f"run={s['run']} at {t:.0f} s")
            want_adv = "scan-time" if "advisor" in name else "none"
            if s["advisor"] != want_adv and (name != "kernel-advisor-after" or t > ready + 1):
                interfered.append(f"advisor_mode={s['advisor']} at {t:.0f} s")
            if name == "fixed-fastest":
                for k, v in FASTEST:
                    if k in ("pages_to_scan", "sleep_millisecs") and bl.ksm_read(k) != v:
                        interfered.append(f"{k} {v} -> {bl.ksm_read(k)} at {t:.0f} s")
            for k, v in fixed.items():
                if bl.ksm_read(k) != v:
                    interfered.append(f"{k} {v} -> {bl.ksm_read(k)} at {t:.0f} s")
            top = max(top, merged)
            if merged < top - n * dup // 100:
                interfered.append(f"merged pages fell from {top} to {merged} at {t:.0f} s (an unmerge?)")
                top = merged
            if t >= next_print:
                next_print += args.print_every
                print(f"    {t:5.0f} s: saved {s['sharing'] * bl.PAGE / 2**20:7.1f} MiB (shared {s['shared']}, sharing "
                      f"{s['sharing']}), merged "
                      f"{100 * merged / (n * dup):5.1f} %, ksmd {s['cpu']:6.1f} CPU-s, pages_to_scan {s['pages']} "
                      f"sleep {s['sleep']} ms" + (f" {per}" if args.print_every < 30 else ""), flush=True)
        adjustments = policy.adjustments(t0)
        foreign += foreign_ksm_users(policy.pids() | {p.pid for p in work.procs})
        vms = kvm.foreign({p.pid for p in work.procs}, t0 - 5)
        if vms:
            foreign.append(f"{len(vms)} KVM VM events of other processes ({', '.join(vms[:4])}"
                           f"{' ...' if len(vms) > 4 else ''})")
    finally:
        kvm.close()
        if policy:
            policy.stop()
        work.stop()
        bl.ksm_reset()
    return {"name": name, "samples": samples, "t90": t90, "cpu90": cpu90, "scanned90": scanned90, "late90": late90,
            "late_t": late_t,
            "ready": ready, "target": target, "dup": dup, "n": n, "adjustments": adjustments,
            "interfered": first_of_each(interfered)[:5], "foreign": sorted(set(foreign))[:5]}


def counter(name):
    """A KSM counter of /sys/kernel/mm/ksm as an int; None where this kernel lacks it."""
    if not os.path.exists(os.path.join(bl.REAL_KSM, name)):
        return None
    return int(bl.ksm_read(name))


def first_of_each(msgs):
    """The first message of each kind (the text before ' at N s')."""
    seen, out = set(), []
    for m in msgs:
        k = m.split(" at ")[0]
        if k not in seen:
            seen.add(k)
            out.append(m)
    return out


def at(samples, t):
    """The last sample at or before t (None past the end)."""
    best = None
    for s in samples:
        if s["t"] <= t + 1e-6:
            best = s
    if not samples or samples[-1]["t"] < t - 1:
        return None
    return best


def late_text(r):
    end = r["samples"][-1]
    if r["late90"] is not None:
        return f"{r['late90']:.1f}"
    if r["late_t"] is not None:
        return f"> {end['t'] - r['late_t']:.0f} ({100 * end['late'] / r['dup']:.0f} %)"
    return "-"


def last30_pct(s):
    """ksmd's CPU over the last 30 s of the samples, in % of one CPU."""
    end = s[-1]
    last30 = [x for x in s if x["t"] >= end["t"] - 30]
    return 100 * (last30[-1]["cpu"] - last30[0]["cpu"]) / max(1e-9, last30[-1]["t"] - last30[0]["t"])


def row(r, duration):
    s = r["samples"]
    end = s[-1]
    mib = lambda x: f"{x['sharing'] * bl.PAGE / 2**20:.0f}" if x else "-"  # noqa: E731
    full = r["n"] * r["dup"]
    t90 = f"{r['t90']:.1f}" if r["t90"] is not None else f"> {duration:.0f} ({100 * end['merged'] / full:.0f} %)"
    cpu90 = f"{r['cpu90']:.1f}" if r["cpu90"] is not None else "-"
    saved = " / ".join(mib(at(s, m)) for m in MILESTONES if m <= duration + 1)
    flag = " (!)" if r["interfered"] or r["foreign"] else ""
    return [r["label"] + flag, t90, cpu90, f"{end['cpu']:.1f}", saved, late_text(r), f"{last30_pct(s):.1f}",
            f"{end['pages']} / {end['sleep']}"]


def median(xs):
    """The median, None (not reached) counting as infinitely late; None for no values or an infinite median."""
    if not xs:
        return None
    m = statistics.median([float("inf") if x is None else x for x in xs])
    return None if m == float("inf") else m


def median_row(rs, duration):
    """One policy's median over its runs, column by column (each column's median, not one run's row)."""
    def fmt(xs, unreached):
        m = median(xs)
        return unreached if m is None else f"{m:.1f}"
    saved = []
    for m in MILESTONES:
        if m > duration + 1:
            continue
        xs = [at(r["samples"], m) for r in rs]
        saved.append("-" if None in xs else f"{statistics.median(x['sharing'] for x in xs) * bl.PAGE / 2**20:.0f}")
    late_started = any(r["late_t"] is not None for r in rs)
    return [f"{rs[0]['name']}, median of {len(rs)}", fmt([r["t90"] for r in rs], f"> {duration:.0f}"),
            fmt([r["cpu90"] for r in rs], "-"), fmt([r["samples"][-1]["cpu"] for r in rs], "-"),
            " / ".join(saved), fmt([r["late90"] for r in rs], "not reached" if late_started else "-"),
            fmt([last30_pct(r["samples"]) for r in rs], "-"), "-"]


def issue17_verdict(results, args):
    """Issue 17's targets for ours-adaptive, per run, against the fixed-fastest runs of this invocation.

    The work of merging is fixed-fastest's median ksmd CPU-s to 90 % merged x (N + 1) / N (N = --merge-procs;
    the late arrival is one more process of the same size). Each ours-adaptive run meets the targets when its
    ksmd CPU-s over the whole run are at most 1.25 x the work + 1 (watching at the slowest rate), its time to
    90 % is at most 1.2 x fixed-fastest's median, and the late arrival's time to 90 % at most 1.2 x
    fixed-fastest's median late time. Reported, never asserted. Returns lines of text.
    """
    ff = [r for r in results if r["name"] == "fixed-fastest"]
    ad = [r for r in results if r["name"] == "ours-adaptive"]
    if not ad:
        return []
    n = args.merge_guests
    late_at = args.late_at if args.late_at < args.duration else args.duration * 2 / 3
    head = (f"issue 17's targets for ours-adaptive ({n} x {args.guest_mib} MiB, {args.duration:.0f} s, the late "
            f"arrival at {late_at:.0f} s; against the median of {len(ff)} fixed-fastest run(s) of this invocation; "
            "issue 17 asks for 180 s, the late arrival at 120 s, at 512 MiB and at 2 GiB, 3 runs of 3)")
    if not ff:
        return [head + ": not judged, fixed-fastest was not run"]
    cpu90, t90, late90 = (median([r[k] for r in ff]) for k in ("cpu90", "t90", "late90"))
    work = cpu90 * (n + 1) / n if cpu90 is not None else None
    lim_cpu = 1.25 * work + 1 if work is not None else None
    lim_t90 = 1.2 * t90 if t90 is not None else None
    lim_late = 1.2 * late90 if late90 is not None else None
    out = [head + ": work = " + (f"{cpu90:.2f} x {n + 1}/{n} = {work:.2f} ksmd CPU-s" if work is not None
                                 else "unknown (fixed-fastest did not reach 90 % merged)")]

    def check(value, limit, what, unit, formula):
        v = "not reached" if value is None else f"{value:.1f}{unit}"
        if limit is None:
            return False, f"{what} {v} (no limit: fixed-fastest did not reach 90 %)"
        ok = value is not None and value <= limit + 1e-9
        return ok, f"{what} {v} (limit {limit:.1f}{unit} = {formula})"

    met = 0
    for r in ad:
        checks = [
            check(r["samples"][-1]["cpu"], lim_cpu, f"ksmd CPU-s over {args.duration:.0f} s", "",
                  "1.25 x work + 1"),
            check(r["t90"], lim_t90, "time to 90 %", " s",
                  f"1.2 x {t90:.1f} s" if t90 is not None else ""),
            check(r["late90"], lim_late, "late arrival's 90 % merged after", " s",
                  f"1.2 x {late90:.1f} s" if late90 is not None else ""),
        ]
        all_ok = all(ok for ok, _ in checks)
        met += all_ok
        out.append(f"{r['label']}: " + "; ".join(f"{'met' if ok else 'NOT met'}: {text}" for ok, text in checks)
                   + (" (!: something else used KSM during this run)" if r["interfered"] or r["foreign"] else ""))
    out.append(f"{met} of {len(ad)} ours-adaptive run(s) met all three of issue 17's targets")
    out.append(cost_per_page(ff + ad))
    return out


def cost_per_page(results):
    """ksmd's CPU per page scanned, from the workload's start to 90 % merged, per run: one line of text.

    What a page costs ksmd moves with the machine from run to run: where runs of one policy scanned about the
    same pages, the spread of their CPU-s is the machine's, not the policy's.
    """
    parts = []
    for r in results:
        if r["cpu90"] is None or not r.get("scanned90"):
            parts.append(f"{r['label']} -")
            continue
        parts.append(f"{r['label']} {r['cpu90'] * 1e6 / r['scanned90']:.2f} µs ({r['scanned90'] / 1e6:.2f} M pages)")
    return "ksmd CPU per page scanned, to 90 % merged (pages_scanned): " + ", ".join(parts)


def run(args, bins, deb, tmp):
    """Returns {'table': markdown, 'notes': [...], 'results': [...]}."""
    names = [x for x in args.policies.split(",") if x]
    for x in names:
        if x not in POLICIES:
            raise SystemExit(f"unknown policy {x}; known: {', '.join(POLICIES)}")
    runs = max(1, args.runs)
    results, notes = [], []
    available = {}
    with bl.SavedKsm():
        for k in range(1, runs + 1):
            for name in names:
                if name not in available:
                    why = policy_available(bins, name, tmp)
                    deadline = time.monotonic() + args.adaptive_wait
                    while why and time.monotonic() < deadline:
                        print(f"  {name}: not available yet ({why}); checking again in 3 min", flush=True)
                        time.sleep(min(180, max(1, deadline - time.monotonic())))
                        subprocess.run(["ninja", "-C", args.build, "ksmtuned/ksmtuned"], capture_output=True)
                        why = policy_available(bins, name, tmp)
                    available[name] = why
                    if why:
                        print(f"  {name}: skipped, ours does not accept it: {why}", flush=True)
                        notes.append(f"{name}: not run, ours does not accept its configuration: {why}")
                if available[name]:
                    continue
                label = f"{name} #{k}" if runs > 1 else name
                r = None
                for attempt in range(1 + args.retries):
                    print(f"  {label}: {POLICIES[name][0]}; {args.duration:.0f} s...", flush=True)
                    try:
                        r = run_policy(name, args, bins, deb, tmp)
                    except Exception as e:  # noqa: BLE001 - reported, and the other policies still run
                        import traceback
                        traceback.print_exc()
                        notes.append(f"{label}: failed: {type(e).__name__}: {e}")
                        break
                    if not (r["interfered"] or r["foreign"]) or attempt == args.retries:
                        break
                    print(f"  {label}: something else used KSM meanwhile ({r['interfered'] + r['foreign']}); "
                          "once more", flush=True)
                if r is None:
                    continue
                r["label"], r["run"] = label, k
                results.append(r)
                # For whoever tunes a policy: every sample of the run, one JSON object per line.
                keep = os.environ.get("KSMTUNED_BENCH_SAMPLES")
                if keep:
                    with open(keep, "a") as f:
                        f.write(json.dumps({"policy": label, "late_t": r["late_t"], "samples": r["samples"]}) + "\n")
                print("    " + " | ".join(row(r, args.duration)), flush=True)
                if r["interfered"] or r["foreign"]:
                    notes.append(f"{label}: (!) something else used KSM during the run: "
                                 f"{', '.join(r['interfered'] + r['foreign'])}")
    ms = "/".join(str(m) for m in MILESTONES if m <= args.duration + 1)
    head = ("policy", "time to 90 % merged, s", "ksmd CPU-s to 90 %", f"ksmd CPU-s over {args.duration:.0f} s",
            f"saved MiB at {ms} s", "late arrival: 90 % merged after, s", "ksmd % of a CPU, last 30 s",
            "pages_to_scan / sleep_ms at the end")
    rows = []
    for name in dict.fromkeys(names):
        rs = [r for r in results if r["name"] == name]
        rows += [row(r, args.duration) for r in rs]
        if runs > 1 and rs:
            rows.append(median_row(rs, args.duration))
    table = bl.md_table(head, rows)
    notes += issue17_verdict(results, args)
    if results:
        notes.append(f"the first {args.merge_guests} processes were all ready (memory filled) after: "
                     + ", ".join(f"{r['label']} {r['ready']:.1f} s" for r in results))
    for r in results:
        adj = r["adjustments"]
        if adj:
            shown = ", ".join(f"{t:.0f} s" + (f" ({why})" if why and why != "interval" else "") for t, why in adj[:8])
            notes.append(f"{r['label']}: {len(adj)} adjustments, at {shown}{' ...' if len(adj) > 8 else ''}")
    return {"table": table, "notes": notes, "results": results}
