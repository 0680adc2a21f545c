/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmd, the kernel's KSM thread: finding it and reading the CPU time it has used. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ProcStat {
        char comm[16];
        char state;
        int64_t ppid;
        uint64_t flags;        /* PF_*: PF_KTHREAD marks a kernel thread */
        uint64_t utime, stime; /* clock ticks */
} ProcStat;

int proc_stat_parse(const char *text, ProcStat *ret);
int ksmd_find(const char *proc_dir, pid_t *ret);
int ksmd_cpu_ticks(const char *proc_dir, pid_t pid, uint64_t *ret);
int ksmd_cpu_ns(const char *proc_dir, pid_t pid, uint64_t *ret, bool *ret_precise);
