# SPDX-License-Identifier: GPL-2.0-or-later
"""Table 3: what each tuning policy gets out of the real KSM, and what ksmd spends on it.

Workload: --guests processes (tests/helpers/fake-guest) of --guest-mib MiB each, marked mergeable, 90 % of
their pages holding content common to all of them (page i the same in every process) and 10 % unique,
each holding a KVM VM (so the kernel's uevent tells ksmtuned a VM started); named like QEMU (comm
qemu-system-x86, argv qemu-system-x86_64 ... -enable-kvm) so both programs count them as guests. At
--late-at seconds one more such process starts (the late arrival).

This host has no memory pressure with a few GiB of guests, so every tuner is forced to run KSM with
KSM_THRES_COEF=100: the threshold is all of memory, free memory is always below it, the tuners boost.

Before each policy: run=2 (unmerge everything, reset the counters), the kernel's default knobs
(advisor_mode none, pages_to_scan 100, sleep_millisecs 20, smart_scan 1, run 0); then the policy starts,
then the workload (t = 0 when the workload is launched). Sampled every --step seconds: pages_sharing
(saved memory), the pages of the first processes merged (sum of /proc/PID/ksm_merging_pages), the late
arrival's, ksmd's CPU time (utime + stime of the kernel thread ksmd). The real KSM is restored at the end.
"""

import os
import subprocess
import time

import benchlib as bl
from benchlib import ksmtest

MILESTONES = (5, 10, 30, 60, 120, 180)
FORCE = "KSM_THRES_COEF=100\n"

# name -> (what it is, extra configuration of ours, or a special kind)
POLICIES = {
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
DEFAULT_POLICIES = "original,ours,ours-modern,ours-advisor,kernel-advisor,ours-adaptive"


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
        p = subprocess.Popen(["qemu-system-x86_64", str(self.mib), "--mergeable", "--fill", "shared90", "--kvm",
                              "-enable-kvm", "-name", "bench"], executable=self.fake_guest,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             env=dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86"))
        self.procs.append(p)
        return p

    @staticmethod
    def ready(p, timeout=120):
        import select
        r, _, _ = select.select([p.stdout], [], [], timeout)
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
        first = [work.spawn() for _ in range(n)]
        for p in first:
            work.ready(p)
        ready = bl.now() - t0
        policy.workload_ready()
        t90 = cpu90 = late90 = None
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
            samples.append(s)
            if t90 is None and merged >= target:
                t90, cpu90 = t, s["cpu"]
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
    return {"name": name, "samples": samples, "t90": t90, "cpu90": cpu90, "late90": late90, "late_t": late_t,
            "ready": ready, "target": target, "dup": dup, "n": n, "adjustments": adjustments,
            "interfered": first_of_each(interfered)[:5], "foreign": sorted(set(foreign))[:5]}


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


def row(r, duration):
    s = r["samples"]
    end = s[-1]
    mib = lambda x: f"{x['sharing'] * bl.PAGE / 2**20:.0f}" if x else "-"  # noqa: E731
    full = r["n"] * r["dup"]
    t90 = f"{r['t90']:.1f}" if r["t90"] is not None else f"> {duration:.0f} ({100 * end['merged'] / full:.0f} %)"
    cpu90 = f"{r['cpu90']:.1f}" if r["cpu90"] is not None else "-"
    last30 = [x for x in s if x["t"] >= end["t"] - 30]
    pct = 100 * (last30[-1]["cpu"] - last30[0]["cpu"]) / max(1e-9, last30[-1]["t"] - last30[0]["t"])
    if r["late90"] is not None:
        late = f"{r['late90']:.1f}"
    elif r["late_t"] is not None:
        late = f"> {end['t'] - r['late_t']:.0f} ({100 * end['late'] / r['dup']:.0f} %)"
    else:
        late = "-"
    saved = " / ".join(mib(at(s, m)) for m in MILESTONES if m <= duration + 1)
    flag = " (!)" if r["interfered"] or r["foreign"] else ""
    return [r["name"] + flag, t90, cpu90, f"{end['cpu']:.1f}", saved, late, f"{pct:.1f}",
            f"{end['pages']} / {end['sleep']}"]


def issue8_verdict(r, duration):
    """Issue 8's targets for the adaptive policy, met or not (reported, never tuned for)."""
    def ok(c):
        return "met" if c else "NOT met"
    cpu = r["samples"][-1]["cpu"]
    t90 = "-" if r["t90"] is None else f"{r['t90']:.1f} s"
    late = "-" if r["late90"] is None else f"{r['late90']:.1f} s"
    return (f"issue 8's targets for ours-adaptive: 90 % merged within 10 s: "
            f"{ok(r['t90'] is not None and r['t90'] <= 10)} ({t90}); at most 10 ksmd CPU-s over {duration:.0f} s: "
            f"{ok(cpu <= 10)} ({cpu:.1f}); the late arrival 90 % merged within 15 s of its start: "
            f"{ok(r['late90'] is not None and r['late90'] <= 15)} ({late})")


def run(args, bins, deb, tmp):
    """Returns {'table': markdown, 'notes': [...], 'results': [...]}."""
    names = [x for x in args.policies.split(",") if x]
    for x in names:
        if x not in POLICIES:
            raise SystemExit(f"unknown policy {x}; known: {', '.join(POLICIES)}")
    results, notes = [], []
    with bl.SavedKsm():
        for name in names:
            why = policy_available(bins, name, tmp)
            deadline = time.monotonic() + args.adaptive_wait
            while why and time.monotonic() < deadline:
                print(f"  {name}: not available yet ({why}); checking again in 3 min", flush=True)
                time.sleep(min(180, max(1, deadline - time.monotonic())))
                subprocess.run(["ninja", "-C", args.build, "ksmtuned/ksmtuned"], capture_output=True)
                why = policy_available(bins, name, tmp)
            if why:
                print(f"  {name}: skipped, ours does not accept it: {why}", flush=True)
                notes.append(f"{name}: not run, ours does not accept its configuration: {why}")
                continue
            r = None
            for attempt in range(1 + args.retries):
                print(f"  {name}: {POLICIES[name][0]}; {args.duration:.0f} s...", flush=True)
                try:
                    r = run_policy(name, args, bins, deb, tmp)
                except Exception as e:  # noqa: BLE001 - reported, and the other policies still run
                    import traceback
                    traceback.print_exc()
                    notes.append(f"{name}: failed: {type(e).__name__}: {e}")
                    break
                if not (r["interfered"] or r["foreign"]) or attempt == args.retries:
                    break
                print(f"  {name}: something else used KSM meanwhile ({r['interfered'] + r['foreign']}); "
                      "once more", flush=True)
            if r is None:
                continue
            results.append(r)
            print("    " + " | ".join(row(r, args.duration)), flush=True)
            if r["interfered"] or r["foreign"]:
                notes.append(f"{name}: (!) something else used KSM during the run: "
                             f"{', '.join(r['interfered'] + r['foreign'])}")
    ms = "/".join(str(m) for m in MILESTONES if m <= args.duration + 1)
    head = ("policy", "time to 90 % merged, s", "ksmd CPU-s to 90 %", f"ksmd CPU-s over {args.duration:.0f} s",
            f"saved MiB at {ms} s", "late arrival: 90 % merged after, s", "ksmd % of a CPU, last 30 s",
            "pages_to_scan / sleep_ms at the end")
    table = bl.md_table(head, [row(r, args.duration) for r in results])
    for r in results:
        if r["name"] == "ours-adaptive":
            notes.append(issue8_verdict(r, args.duration))
        adj = r["adjustments"]
        if adj:
            shown = ", ".join(f"{t:.0f} s" + (f" ({why})" if why and why != "interval" else "") for t, why in adj[:8])
            notes.append(f"{r['name']}: {len(adj)} adjustments, at {shown}{' ...' if len(adj) > 8 else ''}")
    return {"table": table, "notes": notes, "results": results}
