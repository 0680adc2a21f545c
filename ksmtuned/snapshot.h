/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading all that an adjustment needs, once, before it decides: memory, guests, KSM, ksmd's CPU. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest-info.h"
#include "policy.h"

/* ksmd's CPU time at the previous sample. */
typedef struct KsmdSampler {
        pid_t pid; /* 0: not looked for yet; -1: not found (until the next reset to 0) */
        bool have_sample;
        bool precise;    /* ns came from /proc/PID/schedstat, not from clock ticks (see ksmd_cpu_ns()) */
        uint64_t ns;     /* ksmd's CPU time since it started */
        uint64_t usec;   /* CLOCK_MONOTONIC at the sample */
        int error;       /* -errno of the last failed read of ksmd's PID/stat other than "gone"; 0 after a good one */
        pid_t error_pid; /* the PID that read was of */
} KsmdSampler;

/* Where to read from, and what counts as a guest. */
typedef struct SnapshotSource {
        const char *proc_dir; /* /proc */
        int ksm_fd;           /* /sys/kernel/mm/ksm, opened */
        const GuestMatcher *matcher;
        int committed_source; /* COMMITTED_* */
} SnapshotSource;

/* Which read failed. */
typedef enum SnapshotPart {
        SNAPSHOT_MEMINFO, /* PROC/meminfo */
        SNAPSHOT_GUESTS,  /* the scan of PROC for guests */
        _SNAPSHOT_PART_MAX,
} SnapshotPart;

int snapshot_read(const SnapshotSource *src, KsmdSampler *ks, Snapshot *ret, GuestList *ret_guests,
                  SnapshotPart *ret_failed);
int snapshot_read_growth(const SnapshotSource *src, Snapshot *snap);
void snapshot_read_ksm(int ksm_fd, Snapshot *snap);
bool snapshot_sample_ksmd(const char *proc_dir, KsmdSampler *ks, unsigned *ret_permille);
