# SPDX-License-Identifier: GPL-2.0-or-later
"""Table 2: how long after a guest starts or stops each program adjusts KSM.

Ours runs on the host (uevents reach only the host's network namespace) with its defaults except
KSM_MONITOR_INTERVAL=3600, on a temporary --ksm-dir, so the real KSM is untouched; its --debug lines are
stamped as they arrive. The original runs at the same time with its default interval (60 s) in its own
namespace (bench/original_ns.py, fake KSM directory); it adjusts only at its interval, so its delay is the
time to its next tick after each event. Guests:
- libvirt: a diskless KVM guest through a real libvirtd (ksmtest.Libvirtd; one warm-up start first);
- bare KVM: qemu-system-x86_64 -enable-kvm ... -S, started and stopped (SIGTERM) by PID.
Start reference: the guest process's start time (/proc/PID/stat, clock ticks); stop reference: the moment
its process exited (a pidfd for libvirt's qemu, waitpid for ours).
"""

import os
import random
import select
import signal
import subprocess
import threading
import time

import benchlib as bl
from benchlib import ksmtest

QEMU = ["qemu-system-x86_64", "-enable-kvm", "-machine", "pc", "-nodefaults", "-display", "none", "-S",
        "-m", "64"]
GUEST_PREFIX = "ksmtuned-test-bench-"  # ksmtest.Libvirtd destroys leftovers named ksmtuned-test-*


class ExitWatch:
    """Stamps the moment a process (not necessarily our child) exits, through a pidfd."""

    def __init__(self, pid):
        self.fd = os.pidfd_open(pid)
        self.at = None
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self):
        r, _, _ = select.select([self.fd], [], [], 60)
        if r:
            self.at = bl.now()
        os.close(self.fd)

    def wait(self, timeout=60):
        self.thread.join(timeout)
        return self.at


def virsh_retry(lv, what, name):
    """lv.create or lv.destroy; if libvirtd went away (one another program started, which ksmtest.Libvirtd
    then used, was stopped), start ours and try once more."""
    try:
        return getattr(lv, what)(name)
    except AssertionError as e:
        print(f"  virsh {what} {name} failed ({str(e).strip()}); (re)starting libvirtd and retrying", flush=True)
        if lv.virsh("list").returncode != 0:
            lv.start_libvirtd()
        return getattr(lv, what)(name)


def libvirt_qemu_pid(name):
    return int(ksmtest.wait_for(lambda: os.path.exists(f"/run/libvirt/qemu/{name}.pid")
                                and ksmtest.read(f"/run/libvirt/qemu/{name}.pid").strip(), 10))


def task_cpu_ms(pid):
    total = 0.0
    for t in os.listdir(f"/proc/{pid}/task"):
        for line in ksmtest.read(f"/proc/{pid}/task/{t}/sched").splitlines():
            if line.startswith("se.sum_exec_runtime"):
                total += float(line.split(":")[1])
    return total


def ours_adjusts(ours, start, keys, timeout=20):
    """The adjustment of ours that accounts for our guest's event: the first one after its "Guest event:"
    line naming one of keys (a PID or a guest name), looking from output index start.

    Returns (time, reason), or (None, None). Events from elsewhere on the host may come first and share
    the adjustment; then the reason names them, as ours logs only the first of a burst.
    """
    hit = ours.wait_line(lambda s: s.startswith("Guest event:") and any(k in s + " " for k in keys), start,
                         timeout)
    if not hit:
        return None, None
    adj = ours.wait_line(bl.is_adjustment, hit[0], timeout)
    if not adj:
        return None, None
    return adj[1], bl.adjustment_reason(adj[2])


def connected_figures(ours, rounds=50):
    """Memory and CPU per adjustment of ours while connected to libvirt (host processes, SIGUSR1)."""
    st = bl.status_kb(ours.pid, "VmRSS", "RssAnon")
    procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    cpu = task_cpu_ms(ours.pid)
    n = len(ours.adjustments())
    for _ in range(rounds):
        i = ours.count()
        os.kill(ours.pid, signal.SIGUSR1)
        if not ours.wait_line(bl.is_adjustment, i, 10):
            raise RuntimeError("ours did not adjust on SIGUSR1:\n" + ours.text())
    cpu = task_cpu_ms(ours.pid) - cpu
    return {"rss": st["VmRSS"], "anon": st["RssAnon"], "procs": procs,
            "cpu_ms": cpu / max(1, len(ours.adjustments()) - n)}


def run(args, bins, deb, tmp):
    """Returns {'table': markdown, 'notes': [...], 'connected': {...}} or {'skipped': why}."""
    conf = os.path.join(tmp, "ours.conf")
    ksmtest.write(conf, "KSM_MONITOR_INTERVAL=3600\n")
    ksm_dir = ksmtest.make_ksm_dir(os.path.join(tmp, "ours-ksm"))
    samples = args.samples
    ours = orig = lv = None
    qemus = []
    events = []  # (kind, what, ref time, ours adjustment time, ours reason, virsh/Popen/wait returned)
    marks = []  # ours' output index at each event
    mine = set()  # PIDs of our guests
    kvm = bl.KvmEvents()
    result = {}
    try:
        try:
            lv = ksmtest.Libvirtd().__enter__()
        except SystemExit as e:
            return {"skipped": f"libvirt or KVM unavailable (exit {e.code})"}
        print("  libvirtd up; warm-up start/destroy of a guest (QEMU is probed on first use)...", flush=True)
        t = time.monotonic()
        virsh_retry(lv, "create", GUEST_PREFIX + "warmup")
        virsh_retry(lv, "destroy", GUEST_PREFIX + "warmup")
        print(f"  warm-up took {time.monotonic() - t:.1f} s", flush=True)
        orig = bl.OriginalNs(args.build, os.path.join(tmp, "orig"), "fake", "KSM_MONITOR_INTERVAL=60\n", deb)
        ours = bl.Ours(bins["ksmtuned"], conf, ksm_dir)
        if not ours.wait_line(lambda s: s.startswith("Connected to libvirt"), 0, 60):
            raise RuntimeError("ours did not connect to libvirt:\n" + ours.text())
        if not ours.wait_line(bl.is_adjustment, 0, 10):
            raise RuntimeError("ours made no start-up adjustment:\n" + ours.text())
        time.sleep(1)
        result["connected"] = connected_figures(ours)
        rng = random.Random(args.seed)
        t_begin = bl.now()

        def gap():
            # Spread the events over the original's 60 s interval, so that its samples fall at various
            # phases of it; ours has adjusted by then.
            time.sleep(rng.uniform(2.0, 8.0))

        for kind in ("libvirt", "bare KVM"):
            for i in range(samples):
                name = f"{GUEST_PREFIX}{i}"
                start = ours.count()
                if kind == "libvirt":
                    virsh_retry(lv, "create", name)
                    returned = bl.now()
                    pid = libvirt_qemu_pid(name)
                else:
                    p = subprocess.Popen(QEMU, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                    qemus.append(p)
                    returned = bl.now()
                    pid = p.pid
                ref = bl.start_time(pid)
                mine.add(pid)
                keys = (f"PID {pid} ", f"guest {name} ")
                t, reason = ours_adjusts(ours, start, keys)
                events.append((kind, "start", ref, t, reason, returned))
                marks.append(start)
                print(f"  {kind} start #{i + 1}: ours adjusted after "
                      f"{'-' if t is None else f'{t - ref:.2f} s'} ({reason})", flush=True)
                gap()
                start = ours.count()
                if kind == "libvirt":
                    w = ExitWatch(pid)
                    virsh_retry(lv, "destroy", name)
                    returned = bl.now()
                    ref = w.wait() or returned
                else:
                    p.terminate()
                    p.wait(30)
                    ref = returned = bl.now()
                    qemus.remove(p)
                t, reason = ours_adjusts(ours, start, keys)
                events.append((kind, "stop", ref, t, reason, returned))
                marks.append(start)
                print(f"  {kind} stop #{i + 1}: ours adjusted after "
                      f"{'-' if t is None else f'{t - ref:.2f} s'} ({reason})", flush=True)
                gap()
        last = max(e[2] for e in events)
        print("  waiting for the original's next adjustment after the last event (up to 65 s)...", flush=True)
        orig_delays = []
        for e in events:
            a = orig.next_adjustment(e[2], max(1.0, last + 65 - bl.now()))
            orig_delays.append(None if a is None else a - e[2])
        result["orig_adjustments"] = orig.count()
        with ours.cond:
            lines = [line for _, line in ours.lines]
        marks.append(len(lines))
        per_event = [sum(1 for line in lines[marks[i]:marks[i + 1]] if bl.is_adjustment(line))
                     for i in range(len(events))]
    finally:
        kvm.close()
        if ours:
            ours.stop()
        if orig:
            orig.stop()
        for p in qemus:
            bl.stop_pid(p)
        if lv:
            lv.__exit__(None, None, None)
    rows = []
    for kind in ("libvirt", "bare KVM"):
        for what in ("start", "stop"):
            idx = [i for i, e in enumerate(events) if e[0] == kind and e[1] == what]
            ours_d = [events[i][3] - events[i][2] for i in idx if events[i][3] is not None]
            ret_d = [events[i][3] - events[i][5] for i in idx if events[i][3] is not None]
            orig_d = [orig_delays[i] for i in idx if orig_delays[i] is not None]
            reasons = sorted({short_reason(events[i][4]) for i in idx if events[i][4]})
            om, ox = bl.median_max(ours_d)
            rm, rx = bl.median_max(ret_d)
            gm, gx = bl.median_max(orig_d, "{:.1f}")
            missed = len(idx) - len(ours_d)
            adj = sorted({per_event[i] for i in idx})
            rows.append([kind, what, len(idx), f"{om} / {ox}" + (f" ({missed} missed)" if missed else ""),
                         f"{rm} / {rx}", "; ".join(reasons), "/".join(str(a) for a in adj),
                         f"{gm} / {gx}", "30.0 / 60.0"])
    head = ("guest", "event", "n", "ours s, median / max", "ours s from virsh/Popen/wait return",
            "ours: reason logged", "ours: adjustments per event", "original s, median / max",
            "original expected (uniform 0-60 s)")
    result["table"] = bl.md_table(head, rows)
    foreign = kvm.foreign(mine, t_begin)
    result["notes"] = [f"(!) {len(foreign)} KVM VM events of other processes on the host during the samples "
                       f"({', '.join(foreign[:6])}{' ...' if len(foreign) > 6 else ''}): ours adjusts for them "
                       "too, so some adjustments were shared and the adjustment counts are noisy"] if foreign else []
    return result


def short_reason(r):
    """'libvirt guest ksmtuned-test-bench-0 started (+1 more)' -> 'libvirt guest started (+1 more)'."""
    words = r.split()
    out = []
    for w in words:
        if w.startswith(GUEST_PREFIX):
            continue
        if w.isdigit():
            w = "N"
        out.append(w)
    return " ".join(out)
