#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run one libFuzzer target for a bounded time on a temporary copy of its corpora (the repository is never
written), keep any crashing input under the build directory, and exit with the fuzzer's status."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fuzzer")
    ap.add_argument("--corpus", action="append", default=[], help="seed directory (copied, never written)")
    ap.add_argument("--artifacts", required=True, help="where a crashing input is saved")
    ap.add_argument("--dict")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "20")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("FUZZ_RUNS", "5000000")))
    ap.add_argument("--max-len", type=int, default=4096)
    a = ap.parse_args()
    a.fuzzer = os.path.abspath(a.fuzzer)

    name = os.path.basename(a.fuzzer)
    os.makedirs(a.artifacts, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"ksmtuned-{name}-") as tmp:
        work = os.path.join(tmp, "corpus")
        os.mkdir(work)
        n = 0
        for d in a.corpus:
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                src = os.path.join(d, f)
                if os.path.isfile(src):
                    shutil.copyfile(src, os.path.join(work, f"{os.path.basename(d)}-{f}"))
                    n += 1
        if n == 0:
            print(f"no seed input in {a.corpus}", flush=True)
            return 1
        args = [a.fuzzer, work, f"-max_total_time={a.seconds}", f"-runs={a.runs}", f"-max_len={a.max_len}",
                "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", "-use_value_profile=1",
                f"-artifact_prefix={os.path.join(os.path.abspath(a.artifacts), name)}-"]
        if a.dict:
            args.append(f"-dict={os.path.abspath(a.dict)}")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        print("+ " + " ".join(args), flush=True)
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                           cwd=tmp, env=env)
        out = p.stdout
        # libFuzzer's progress lines are many; keep the start, the stats and anything after a crash.
        lines = out.splitlines()
        crash = next((i for i, l in enumerate(lines) if "ERROR:" in l or "==ERROR" in l or "SUMMARY:" in l), None)
        shown = lines[:20] + ["..."] + lines[-40:] if crash is None and len(lines) > 60 else lines
        print("\n".join(shown), flush=True)
        runs = re.search(r"stat::number_of_executed_units: (\d+)", out)
        secs = re.search(r"Done (\d+) runs in (\d+) second", out)
        print(f"{name}: exit {p.returncode}, {runs.group(1) if runs else '?'} executions"
              f"{' in ' + secs.group(2) + ' s' if secs else ''}, {n} seeds", flush=True)
        if p.returncode != 0:
            print(f"{name} FAILED: the crashing input is in {a.artifacts}; minimise it with\n"
                  f"  {a.fuzzer} -minimize_crash=1 -runs=100000 FILE\n"
                  f"and add it to tests/fuzz/regressions/{name.removeprefix('fuzz-')}/ once fixed.", flush=True)
        return p.returncode


if __name__ == "__main__":
    sys.exit(main())
