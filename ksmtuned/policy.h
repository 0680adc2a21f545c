/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tuning policy: a pure function of settings, a memory snapshot and the previous npages. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Derived once from MemTotal and the settings (at start and on reload). */
typedef struct PolicyParams {
        uint64_t total;    /* MemTotal, kB */
        uint64_t sleep_ms; /* sleep_millisecs to write */
        uint64_t thres;    /* free-memory threshold, kB */
} PolicyParams;

/* The inputs of one adjustment, in kB. */
typedef struct Snapshot {
        uint64_t mem_total;
        uint64_t mem_free;
        uint64_t buffers;
        uint64_t cached;
        uint64_t committed; /* resident memory of guest processes (as KSM_COMMITTED measures it) */
        unsigned guests;    /* how many processes counted */
        uint64_t mem_available;
        bool has_mem_available;    /* kernels before 3.14 lack it */
        bool has_ksmd_cpu;         /* false at the first adjustment, or without ksmd in /proc */
        unsigned ksmd_cpu_permille; /* ksmd's CPU since the previous adjustment, in ‰ of one CPU */
        uint64_t merged;           /* what unmerging would take back: (pages_sharing + ksm_zero_pages) pages */
} Snapshot;

typedef struct Decision {
        bool run;          /* false: write 0 to run, nothing else */
        bool boost;        /* with run: free < thres, so npages was boosted (else decayed) */
        int64_t npages;    /* npages after this adjustment (unchanged when stopping) */
        uint64_t sleep_ms; /* with run */
        uint64_t free;     /* MemFree + Buffers + Cached */
        uint64_t thres;
        uint64_t committed;
        uint64_t total;
        bool free_is_available; /* free is MemAvailable (KSM_FREE_MEMORY=available) */
        bool cpu_capped;        /* with run: free memory was short, but ksmd is over KSM_CPU_BUDGET: decayed */
        bool unmerge;           /* without run: also unmerge (KSM_STOP_MODE=unmerge, and memory can take it) */
        bool unmerge_refused;   /* without run: KSM_STOP_MODE=unmerge, but memory could not take it */
} Decision;

void policy_params(const Settings *s, uint64_t mem_total, PolicyParams *ret);
int64_t policy_clamp(const Settings *s, int64_t npages);
void policy_decide(const Settings *s, const PolicyParams *p, const Snapshot *snap, int64_t prev_npages,
                   Decision *ret);
