#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""CPU time per adjustment: Debian's original ksmtuned, ours, and a bare pass over /proc, side by side.

Not a test. Run as root (see bench/README.md):
    meson compile -C build bench                        # 300 idle processes
    python3 bench/run.py --build build --procs 300,2000,10000

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
"""

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import ksmtest  # noqa: E402
import test_differential as td  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="meson build directory (default: build)")
    ap.add_argument("--procs", default="300", help="idle processes, a comma-separated list (default: 300)")
    ap.add_argument("--rounds", type=int, default=500, help="adjustments of ours (default: 500)")
    ap.add_argument("--original-rounds", type=int, default=200, help="adjustments of the original (default: 200)")
    ap.add_argument("--passes", type=int, default=200, help="bare passes over /proc (default: 200)")
    ap.add_argument("--interval", type=int, default=20, help="ms between bare passes (default: 20)")
    ap.add_argument("--guests", type=int, default=2, help="fake guests of 16 MiB (default: 2)")
    return ap.parse_args()


def binaries(build):
    b = {"ksmtuned": "ksmtuned/ksmtuned", "proc-pass": "bench/proc-pass", "idler": "bench/idler",
         "fake-guest": "bench/fake-guest"}
    b = {k: os.path.join(os.path.abspath(build), v) for k, v in b.items()}
    missing = [p for p in b.values() if not os.access(p, os.X_OK)]
    if missing:
        sys.exit(f"missing: {' '.join(missing)}\nbuild them: ninja -C {build} ksmtuned/ksmtuned "
                 "bench/proc-pass bench/idler bench/fake-guest")
    return b


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
    ours = td.Ours(td.ETC_CONF, ours_ksm)
    try:
        for _ in range(warmup):
            ours.adjust()
        cpu, forks = task_cpu_ms(ours.daemon.pid), ns_last_pid()
        for _ in range(rounds):
            ours.adjust()
        cpu, forks = task_cpu_ms(ours.daemon.pid) - cpu, ns_last_pid() - forks
        if ours.extra_adjustments():
            raise RuntimeError("ours adjusted on its own during the benchmark")
    finally:
        ours.stop()
    return cpu / rounds, forks / rounds


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
    finally:
        orig.stop()
    return (children_cpu_ms() - before - start_script) / rounds, forks / rounds


def table(rows):
    head = ("idle procs", "in /proc", "original ms", "ours ms", "bare ms", "orig/ours", "ours/bare",
            "bare hot ms", "forks orig", "forks ours")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
                str(r["idle"]), str(r["procs"]), f"{r['orig']:.2f}", f"{r['ours']:.3f}", f"{r['bare']:.3f}",
                f"{r['orig'] / r['ours']:.0f}x", f"{r['ours'] / r['bare']:.2f}x", f"{r['hot']:.3f}",
                f"{r['orig_forks']:.1f}", f"{r['ours_forks']:.1f}"]) + " |")
    return "\n".join(lines)


def machine():
    cpu = "?"
    for line in ksmtest.read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = round(int(ksmtest.read("/proc/meminfo").split()[1]) / 1024 / 1024)
    return f"{cpu}, {os.cpu_count()} CPUs, {mem} GiB, kernel {platform.release()}"


def run(args, bins):
    td.KSMTUNED = bins["ksmtuned"]
    host = machine()
    tmp = tempfile.mkdtemp(prefix="ksmbench-")
    mounts = idlers = None
    guests = []
    try:
        script = td.extract_original(os.environ["KSMDIFF_DEB"], os.path.join(tmp, "original"))
        mounts = td.Mounts(tmp)
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
            row["ours"], row["ours_forks"] = measure_ours(ours_ksm, args.rounds)
            print(f"  original, {args.original_rounds} adjustments...", flush=True)
            row["orig"], row["orig_forks"] = measure_original(script, tmp, args.original_rounds)
            td.stop_process(idlers)
            idlers = None
            rows.append(row)
            print(f"  original {row['orig']:.2f} ms, ours {row['ours']:.3f} ms, bare {row['bare']:.3f} ms",
                  flush=True)
        print(f"\nMachine: {host}")
        print(f"CPU time per adjustment ({args.guests} fake guests of 16 MiB; ours {args.rounds}, original "
              f"{args.original_rounds} adjustments; bare: {args.passes} passes, {args.interval} ms apart):\n")
        print(table(rows), flush=True)
    finally:
        if idlers:
            td.stop_process(idlers)
        for g in guests:
            td.stop_process(g)
        if mounts:
            mounts.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = parse_args()
    bins = binaries(args.build)
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (mount and PID namespaces)")
    if os.environ.get("KSMDIFF_INNER") != "1":
        os.environ["BUILD_ROOT"] = os.path.abspath(args.build)
        deb = td.fetch_original_deb()
        if not deb:
            sys.exit("`apt-get download ksmtuned` failed")
        td.reexec_in_namespace({"KSMDIFF_DEB": deb})
    t = time.monotonic()
    run(args, bins)
    print(f"\n({time.monotonic() - t:.0f} s)")


if __name__ == "__main__":
    main()
