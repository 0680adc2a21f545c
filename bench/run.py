#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ksmtuned's benchmarks, ours against Debian's original script: three tables (see bench/README.md).

Not a test. Run as root:
    meson compile -C build bench-all                    # all three tables, about 30 minutes
    python3 bench/run.py --build build --all            # the same
    meson compile -C build bench                        # table 1 only, 300 idle processes
    python3 bench/run.py --build build --tables 2,3 --duration 60

1. daemon cost (this file): CPU, forks and memory per adjustment with N idle processes;
2. reaction (bench/reaction.py): delay from a guest's start or stop to the adjustment;
3. KSM effect (bench/merging.py): per policy, time to merge, memory saved over time, ksmd CPU.

Table 1, the rest of this text:

Like tests/integration/test_differential.py (whose helpers it uses), it re-executes itself as PID 1 of a
private mount and PID namespace: the original writes its hard-coded /sys/kernel/mm/ksm, which is a tmpfs
there, and /proc shows only what the benchmark started, so every program sees the same processes: the idle
ones (bench/idler), two small fake guests, and the programs themselves.

- ours: `ksmtuned --config /etc/ksmtuned.conf --ksm-dir TMP --debug`, SIGUSR1 --rounds times, each
  waited for; CPU from the kernel's precise se.sum_exec_runtime (/proc/PID/task/*/sched), read after a
  few warm-up adjustments and after the last one, so start-up is left out.
- the original: production mode (no DEBUG, which would fork /bin/date per log line), SIGUSR1
  --original-rounds times, each sent once its loop waits again; its CPU is mostly in what it forks (awk,
  pgrep, ps, subshells, one sleep per round), so it is measured as the whole tree: the RUSAGE_CHILDREN of
  this process (PID 1 of the namespace, which reaps the loop and its orphaned sleeps) from before it starts
  until all of it has exited and been reaped, less the start-up script's own share.
- bare: bench/proc-pass, opendir(/proc) and read every /proc/PID/comm, averaged over --passes passes
  spaced --interval ms apart like the daemons' adjustments (which the benchmark paces by polling every
  20 ms): back-to-back passes run in hot caches and cost about 2/3 of that ("bare hot", for reference).
- forks: how far the namespace's /proc/sys/kernel/ns_last_pid moved, divided by the rounds (nothing else
  forks in the namespace meanwhile).
- memory: VmRSS and RssAnon (private anonymous memory) from /proc/PID/status after the rounds: ours, and
  the original's loop (its bash process; the `sleep` it waits for is given apart). /run/libvirt is hidden
  under an empty tmpfs in the namespace, so ours runs without libvirt (no socket: the library is never
  loaded); the reaction benchmark gives ours' figures while connected to a real libvirtd.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402
import merging  # noqa: E402
import reaction  # noqa: E402
from benchlib import ksmtest  # noqa: E402
import test_differential as td  # noqa: E402

ALL_PROCS = "300,2000,10000"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--build", default="build", help="meson build directory")
    ap.add_argument("--all", action="store_true", help=f"all three tables (table 1 with --procs {ALL_PROCS})")
    ap.add_argument("--tables", default=None, help="which tables, e.g. 1,3 (default: 1, or 1,2,3 with --all)")
    ap.add_argument("--output", help="also write the tables, as markdown, to this file")
    t1 = ap.add_argument_group("table 1, daemon cost")
    t1.add_argument("--procs", default=None, help="idle processes, a comma-separated list "
                    f"(default: 300, or {ALL_PROCS} with --all)")
    t1.add_argument("--rounds", type=int, default=500, help="adjustments of ours")
    t1.add_argument("--original-rounds", type=int, default=200, help="adjustments of the original")
    t1.add_argument("--passes", type=int, default=200, help="bare passes over /proc")
    t1.add_argument("--interval", type=int, default=20, help="ms between bare passes")
    t1.add_argument("--guests", type=int, default=2, help="fake guests of 16 MiB")
    t2 = ap.add_argument_group("table 2, reaction")
    t2.add_argument("--samples", type=int, default=3, help="starts (and as many stops) per kind of guest")
    t2.add_argument("--seed", type=int, default=1, help="seed of the random gaps between events")
    t3 = ap.add_argument_group("table 3, KSM effect")
    t3.add_argument("--duration", type=float, default=180, help="seconds per policy")
    t3.add_argument("--late-at", type=float, default=120, help="when the late arrival starts, s "
                    "(2/3 of --duration when that is shorter)")
    t3.add_argument("--policies", default=merging.DEFAULT_POLICIES,
                    help="which policies, in order; also kernel-advisor-after (the advisor switched on once the "
                    "workload is there). fixed-fastest (no tuner, pages_to_scan 10000, sleep_millisecs 10, run 1) "
                    "is the reference issue 17's targets for ours-adaptive are judged against")
    t3.add_argument("--runs", type=int, default=1,
                    help="run the whole list of policies this many times, round-robin: a row per policy per run, "
                    "and with more than one a median row per policy")
    t3.add_argument("--merge-procs", type=int, default=4, dest="merge_guests",
                    help="processes of the workload (the late arrival is one more)")
    t3.add_argument("--guest-mib", type=int, default=512,
                    help="MiB per process of the workload, the late arrival's too; the targets follow it")
    t3.add_argument("--step", type=float, default=0.25, help="seconds between samples")
    t3.add_argument("--print-every", type=float, default=30, help="seconds between progress lines")
    t3.add_argument("--retries", type=int, default=1,
                    help="runs again a policy during which something else used KSM, this many times")
    t3.add_argument("--adaptive-wait", type=float, default=0,
                    help="seconds to wait (rebuilding ksmtuned every 3 min) for a policy ours does not "
                    "accept yet")
    ap.add_argument("--table1-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tables = args.tables or ("1,2,3" if args.all else "1")
    args.tables = sorted({int(x) for x in tables.split(",") if x})
    if not set(args.tables) <= {1, 2, 3}:
        ap.error("--tables takes 1, 2 and 3")
    if args.runs < 1 or args.merge_guests < 1 or args.guest_mib < 1:
        ap.error("--runs, --merge-procs and --guest-mib take a positive number")
    args.procs = args.procs or (ALL_PROCS if args.all else "300")
    return args


def binaries(build):
    b = {"ksmtuned": "ksmtuned/ksmtuned", "proc-pass": "bench/proc-pass", "idler": "bench/idler",
         "fake-guest": "bench/fake-guest"}
    b = {k: os.path.join(os.path.abspath(build), v) for k, v in b.items()}
    missing = [p for p in b.values() if not os.access(p, os.X_OK)]
    if missing:
        sys.exit(f"missing: {' '.join(missing)}\nbuild them: ninja -C {build} ksmtuned/ksmtuned "
                 "bench/proc-pass bench/idler bench/fake-guest")
    return b


# ---------------------------------------------------------------- table 1, inside the namespace

def ns_last_pid():
    return int(ksmtest.read("/proc/sys/kernel/ns_last_pid"))


def proc_count():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def task_cpu_ms(pid):
    """CPU time of all threads of pid in ms, precise where /proc/PID/sched exists, else in clock ticks."""
    total = 0.0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in ksmtest.read(f"/proc/{pid}/task/{t}/sched").splitlines():
                if line.startswith("se.sum_exec_runtime"):
                    total += float(line.split(":")[1])
        except OSError:
            f = ksmtest.read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu_ms():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def start_idlers(idler, n):
    p = subprocess.Popen([idler, str(n)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    if p.stdout.readline() != b"ready\n":
        raise RuntimeError(f"{idler} {n} did not start")
    return p


def bare_pass(proc_pass, passes, interval_ms):
    out = subprocess.run([proc_pass, str(passes), str(interval_ms)], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[out.index("cpu_us_per_pass") + 1]) / 1000.0


def measure_ours(ours_ksm, rounds, warmup=10):
    """CPU ms and forks per adjustment, and memory (kB) after the rounds.

    Adjustments are counted from its log: a KVM uevent from elsewhere on the host (uevents cross PID and
    mount namespaces) adds one, which then counts too.
    """
    ours = td.Ours(td.ETC_CONF, ours_ksm)
    try:
        for _ in range(warmup):
            ours.adjust()
        cpu, forks, n = task_cpu_ms(ours.daemon.pid), ns_last_pid(), len(ours.lines())
        for _ in range(rounds):
            ours.adjust()
        cpu, forks, n = task_cpu_ms(ours.daemon.pid) - cpu, ns_last_pid() - forks, len(ours.lines()) - n
        mem = bl.status_kb(ours.daemon.pid, "VmRSS", "RssAnon")
        if n != rounds:
            print(f"  note: ours made {n - rounds} adjustment(s) of its own (a KVM uevent from the host?)",
                  flush=True)
    finally:
        ours.stop()
    return cpu / n, forks / rounds, mem


def measure_original(script, tmp, rounds):
    before = children_cpu_ms()
    orig = td.Original(script, tmp, debug=False)
    ru = orig.main_rusage
    start_script = (ru.ru_utime + ru.ru_stime) * 1000.0
    forks = ns_last_pid()
    try:
        for _ in range(rounds):
            orig.adjust()
        forks = ns_last_pid() - forks
        ksmtest.wait_for(orig.idle, 10)
        mem = bl.status_kb(orig.loop, "VmRSS", "RssAnon")
        sleeps = [pid for pid, comm in td.children(orig.loop) if comm == "sleep"]
        mem["sleep"] = bl.status_kb(sleeps[-1], "VmRSS", "RssAnon") if sleeps else None
    finally:
        orig.stop()
    return (children_cpu_ms() - before - start_script) / rounds, forks / rounds, mem


def mib(kb):
    return f"{kb / 1024:.1f}"


def table1(rows):
    head = ("idle procs", "in /proc", "original ms", "ours ms", "bare ms", "orig/ours", "ours/bare",
            "bare hot ms", "forks orig", "forks ours", "ours RSS MiB (anon)", "original RSS MiB (anon)")
    out = []
    for r in rows:
        om, um = r["orig_mem"], r["ours_mem"]
        out.append([r["idle"], r["procs"], f"{r['orig']:.2f}", f"{r['ours']:.3f}", f"{r['bare']:.3f}",
                    f"{r['orig'] / r['ours']:.0f}x", f"{r['ours'] / r['bare']:.2f}x", f"{r['hot']:.3f}",
                    f"{r['orig_forks']:.1f}", f"{r['ours_forks']:.1f}",
                    f"{mib(um['VmRSS'])} ({mib(um['RssAnon'])})", f"{mib(om['VmRSS'])} ({mib(om['RssAnon'])})"])
    return bl.md_table(head, out)


def hide_libvirt(tmp):
    """An empty tmpfs over /run/libvirt in the namespace: ours finds no libvirt socket there."""
    if not os.path.isdir("/run/libvirt"):
        return None
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "ksmbench-nolibvirt", "/run/libvirt"],
                   check=True)
    return "/run/libvirt"


def run_table1(args, bins):
    td.KSMTUNED = bins["ksmtuned"]
    tmp = tempfile.mkdtemp(prefix="ksmbench-")
    mounts = idlers = hidden = None
    guests = []
    try:
        script = td.extract_original(os.environ["KSMDIFF_DEB"], os.path.join(tmp, "original"))
        mounts = td.Mounts(tmp)
        hidden = hide_libvirt(tmp)
        mounts.set_meminfo(16777216, 1000000)  # memory short: both boost, then sit at MAX, every round
        ksmtest.write(td.ETC_CONF, "KSM_MONITOR_INTERVAL=3600\n")
        ksmtest.make_ksm_dir(ksmtest.REAL_KSM)
        ours_ksm = ksmtest.make_ksm_dir(os.path.join(tmp, "ours-ksm"))
        guests = [td.start_fake("guest", 16, bins["fake-guest"]) for _ in range(args.guests)]
        rows = []
        for n in [int(x) for x in args.procs.split(",")]:
            idlers = start_idlers(bins["idler"], n)
            row = {"idle": n, "procs": proc_count()}
            print(f"{n} idle processes ({row['procs']} in /proc): bare pass...", flush=True)
            row["bare"] = bare_pass(bins["proc-pass"], args.passes, args.interval)
            row["hot"] = bare_pass(bins["proc-pass"], args.passes, 0)
            print(f"  ours, {args.rounds} adjustments...", flush=True)
            row["ours"], row["ours_forks"], row["ours_mem"] = measure_ours(ours_ksm, args.rounds)
            print(f"  original, {args.original_rounds} adjustments...", flush=True)
            row["orig"], row["orig_forks"], row["orig_mem"] = measure_original(script, tmp, args.original_rounds)
            td.stop_process(idlers)
            idlers = None
            rows.append(row)
            print(f"  original {row['orig']:.2f} ms, ours {row['ours']:.3f} ms, bare {row['bare']:.3f} ms",
                  flush=True)
        sleep = rows[-1]["orig_mem"].get("sleep")
        text = (f"CPU time per adjustment ({args.guests} fake guests of 16 MiB; ours {args.rounds}, original "
                f"{args.original_rounds} adjustments; bare: {args.passes} passes, {args.interval} ms apart); "
                "memory after the rounds: VmRSS (RssAnon), ours without libvirt; the original's bash loop"
                + (f", plus {mib(sleep['VmRSS'])} ({mib(sleep['RssAnon'])}) MiB for the `sleep` it waits for"
                   if sleep else "") + ":\n\n" + table1(rows))
        print("\n" + text, flush=True)
        if args.table1_out:
            ksmtest.write(args.table1_out, text + "\n")
    finally:
        if idlers:
            td.stop_process(idlers)
        for g in guests:
            td.stop_process(g)
        if hidden:
            subprocess.run(["umount", "-l", hidden], check=False)
        if mounts:
            mounts.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- all tables, on the host

def table1_in_namespace(args):
    """Table 1 runs in its own namespace: this same script, with --tables 1, as a child."""
    out = os.path.join(tempfile.mkdtemp(prefix="ksmbench-t1-"), "table1.md")
    cmd = [sys.executable, os.path.abspath(__file__), "--build", args.build, "--tables", "1", "--procs", args.procs,
           "--rounds", str(args.rounds), "--original-rounds", str(args.original_rounds), "--passes",
           str(args.passes), "--interval", str(args.interval), "--guests", str(args.guests), "--table1-out", out]
    r = subprocess.run(cmd)
    text = ksmtest.read(out) if os.path.exists(out) else f"(table 1 failed: exit {r.returncode})\n"
    shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    return text


def table2_text(r):
    if "skipped" in r:
        return f"skipped: {r['skipped']}\n"
    c = r["connected"]
    return ("Delay from a guest's start (its process's start time) or stop (its process's exit) to the "
            "adjustment, in seconds; ours: defaults, KSM_MONITOR_INTERVAL=3600; the original: its default 60 s "
            f"interval ({r['orig_adjustments']} adjustments seen):\n\n" + r["table"] + "\n\n"
            f"Ours connected to libvirtd: RSS {mib(c['rss'])} MiB, RssAnon {mib(c['anon'])} MiB, "
            f"{c['cpu_ms']:.3f} ms CPU per adjustment with {c['procs']} processes on the host.\n"
            + "".join(f"\n- {x}" for x in r.get("notes", [])) + ("\n" if r.get("notes") else ""))


def table3_text(args, r):
    n, m = args.merge_guests, args.guest_mib
    dup = m * 1024 * 1024 // bl.PAGE * 90 // 100
    late = args.late_at if args.late_at < args.duration else args.duration * 2 / 3
    runs = f" ({args.runs} runs of each, round-robin)" if args.runs > 1 else ""
    return (f"{n} processes x {m} MiB, 90 % of each identical across them ({n * dup} pages to merge, "
            f"{(n - 1) * dup * bl.PAGE / 2**20:.0f} MiB to save), mergeable, each creating a KVM VM before it maps "
            f"and fills its memory (--kvm-first); one more at {late:.0f} s (the late arrival, {dup} more pages to "
            f"merge, {dup * bl.PAGE / 2**20:.0f} MiB to save); {args.duration:.0f} s per policy{runs}, t = 0 when "
            "the workload is launched, the policy started just before; KSM forced on for the tuners "
            "(KSM_THRES_COEF=100):\n\n"
            + r["table"] + "\n\n" + "\n".join(f"- {x}" for x in r["notes"]) + "\n")


def run_all(args, bins, deb):
    import traceback
    parts = []
    host = bl.machine()
    load = os.getloadavg()[0]
    t = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ksmbench-")

    def table(title, fn):
        print(f"== {title}", flush=True)
        try:
            text = fn()
        except Exception as e:  # noqa: BLE001 - one table failing must not lose the others
            traceback.print_exc()
            text = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}\n"
        parts.append(f"## {title}\n\n{text}")

    try:
        if 1 in args.tables:
            table("Table 1: daemon cost", lambda: table1_in_namespace(args))
        if 2 in args.tables:
            table("Table 2: reaction to guests starting and stopping",
                  lambda: table2_text(reaction.run(args, bins, deb, os.path.join(tmp, "t2"))))
        if 3 in args.tables:
            table("Table 3: KSM effect per policy",
                  lambda: table3_text(args, merging.run(args, bins, deb, os.path.join(tmp, "t3"))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = (f"Machine: {host}; load average (1 min) {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
            "\n\n" + "\n".join(parts) +
            f"\n(`{' '.join(sys.argv)}`: {time.monotonic() - t:.0f} s)\n")
    print("\n" + "=" * 100 + "\n" + text, flush=True)
    if args.output:
        ksmtest.write(args.output, text)


def main():
    args = parse_args()
    bl.need_root()
    bins = binaries(args.build)
    if os.environ.get("KSMDIFF_INNER") == "1":
        t = time.monotonic()
        run_table1(args, bins)
        print(f"\n({time.monotonic() - t:.0f} s)")
        return
    os.environ["BUILD_ROOT"] = os.path.abspath(args.build)
    deb = td.fetch_original_deb()
    if not deb:
        sys.exit("`apt-get download ksmtuned` failed")
    if args.tables == [1] and not args.output:
        print(f"Machine: {bl.machine()}", flush=True)
        td.reexec_in_namespace({"KSMDIFF_DEB": deb})
    run_all(args, bins, deb)


if __name__ == "__main__":
    main()
