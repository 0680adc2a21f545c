#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Soak: ksmtuned adjusting every 10 ms for minutes while guests come and go; are its fds and memory flat?

Not a test: it prints a table. KSM_MONITOR_INTERVAL counts whole seconds, so the 10 ms cadence comes from
SIGUSR1 (each one an adjustment: a full pass over /proc, meminfo, the knobs). Guests come and go as real
processes named like QEMU (counted by the /proc pass) and as bare KVM VMs (each a kernel uevent). The
daemon tunes a temporary copy of the KSM directory, so the real KSM is left alone.

    python3 bench/soak.py --build build [--minutes 3]
"""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "VmHWM")}


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--period-ms", type=float, default=10.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak.py: run as root (it starts KVM VMs and reads ksmd)")
    ksmtuned = os.path.join(args.build, "ksmtuned", "ksmtuned")
    guest = os.path.join(args.build, "tests", "fake-guest")
    for p in (ksmtuned, guest):
        if not os.access(p, os.X_OK):
            sys.exit(f"soak.py: {p} is missing: build first (ninja -C {args.build})")

    work = tempfile.mkdtemp(prefix="ksmtuned-soak-")
    ksm = os.path.join(work, "ksm")
    shutil.copytree("/sys/kernel/mm/ksm", ksm, ignore=lambda d, names: [n for n in names if n.startswith("advisor")])
    conf = os.path.join(work, "ksmtuned.conf")
    with open(conf, "w") as f:
        f.write("KSM_MONITOR_INTERVAL=3600\nKSM_THRES_COEF=100\nKSM_EVENT_SETTLE_MSEC=0\nKSM_LIBVIRT_URI=\n")
    log = open(os.path.join(work, "ksmtuned.log"), "w+")
    d = subprocess.Popen([ksmtuned, "--debug", "--config", conf, "--ksm-dir", ksm], stdout=log, stderr=log)
    guests, vms = [], []
    rows = []
    sent = 0
    try:
        time.sleep(1.0)
        start = time.monotonic()
        end = start + args.minutes * 60
        next_row = start
        period = args.period_ms / 1000
        while time.monotonic() < end:
            os.kill(d.pid, signal.SIGUSR1)
            sent += 1
            # About twice a second, a guest process starts or ends; about once a second, a KVM VM.
            if random.random() < period * 2:
                if guests and (len(guests) > 8 or random.random() < 0.5):
                    g = guests.pop(0)
                    g.terminate()
                    g.wait()
                else:
                    guests.append(subprocess.Popen([guest, "16"], stdout=subprocess.DEVNULL,
                                                   env=dict(os.environ, FAKE_GUEST_COMM="qemu-system-x86")))
            if random.random() < period:
                if vms:
                    v = vms.pop()
                    v.terminate()
                    v.wait()
                else:
                    vms.append(subprocess.Popen(["qemu-system-x86_64", "-enable-kvm", "-machine", "pc", "-nodefaults",
                                                 "-display", "none", "-S", "-m", "32"], stderr=subprocess.DEVNULL))
            now = time.monotonic()
            if now >= next_row:
                log.flush()
                with open(log.name) as f:
                    n = len(re.findall(r"^adjustment #", f.read(), re.M))
                rows.append((now - start, n, fds(d.pid), status(d.pid)))
                next_row += max(10.0, args.minutes * 60 / 12)
            time.sleep(period)
        assert d.poll() is None, "ksmtuned exited during the soak"
        log.flush()
        with open(log.name) as f:
            text = f.read()
        n = len(re.findall(r"^adjustment #", text, re.M))
        rows.append((time.monotonic() - start, n, fds(d.pid), status(d.pid)))
        events = len(re.findall(r"^Guest event: KVM VM", text, re.M))
        errors = len(re.findall(r"^(error|warning):", text, re.M))
    finally:
        for p in guests + vms:
            p.terminate()
            p.wait()
        d.terminate()
        d.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"soak: {args.minutes:g} min, SIGUSR1 every {args.period_ms:g} ms ({sent} sent), guests and KVM VMs "
          f"coming and going; {n} adjustments, {events} KVM uevents seen, {errors} warnings or errors logged")
    print("| time s | adjustments | fds | VmRSS kB | RssAnon kB | VmHWM kB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for t, n, f, st in rows:
        print(f"| {t:.0f} | {n} | {f} | {st['VmRSS']} | {st['RssAnon']} | {st['VmHWM']} |")
    first, last = rows[0], rows[-1]
    print(f"fds {first[2]} -> {last[2]}; RssAnon {first[3]['RssAnon']} -> {last[3]['RssAnon']} kB; "
          f"VmRSS {first[3]['VmRSS']} -> {last[3]['VmRSS']} kB")


if __name__ == "__main__":
    main()
