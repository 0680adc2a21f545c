/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tuning policy: a pure function of settings, a memory snapshot and the previous npages. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "adaptive.h"
#include "config.h"
#include "trigger.h"

/* The knobs an adjustment writes, in the original's order, then those set at start and reload. */
typedef enum Knob {
        KNOB_PAGES_TO_SCAN,
        KNOB_SLEEP_MILLISECS,
        KNOB_RUN,
        KNOB_ADVISOR_MODE,
        KNOB_ADVISOR_MAX_CPU,
        KNOB_ADVISOR_MIN_PAGES,
        KNOB_ADVISOR_MAX_PAGES,
        KNOB_ADVISOR_TARGET_SCAN_TIME,
        KNOB_SMART_SCAN,
        KNOB_USE_ZERO_PAGES,
        KNOB_MAX_PAGE_SHARING,
        KNOB_MERGE_ACROSS_NODES,
        _KNOB_MAX,
        _KNOB_ADJUSTED = KNOB_RUN + 1, /* the first three: those every adjustment writes */
} Knob;

/* Their file names in /sys/kernel/mm/ksm. */
extern const char *const knob_names[_KNOB_MAX];

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
        bool has_mem_available;     /* kernels before 3.14 lack it */
        unsigned meminfo_missing;   /* 1u << MEMINFO_*: fields meminfo lacks, counted as 0 */
        unsigned meminfo_malformed; /* 1u << MEMINFO_*: fields not a number of kB, counted as 0 */
        bool has_ksmd_cpu;          /* false at the first adjustment, or without ksmd in /proc */
        unsigned ksmd_cpu_permille; /* ksmd's CPU since the previous adjustment, in ‰ of one CPU */
        uint64_t merged;            /* what unmerging would take back: (pages_sharing + ksm_zero_pages) pages */
        unsigned guest_fallbacks;   /* guests counted by RSS: their PSS or merged pages could not be read */
        bool has_guests_resident;   /* guests_resident was read with this snapshot */
        uint64_t guests_resident;   /* the guest processes' RSS, kB, whatever KSM_COMMITTED counts */
        uint64_t taken;             /* µs, CLOCK_MONOTONIC: when it was read */

        /* KSM as it stood before the adjustment. */
        KsmCounters counters; /* absent files read as 0 */
        bool has_counters;    /* full_scans, pages_shared and pages_sharing were there */
        bool has_general_profit;
        int64_t general_profit;          /* bytes; may be negative */
        bool knob_known[_KNOB_ADJUSTED]; /* false: the knob could not be read */
        uint64_t knob[_KNOB_ADJUSTED];
        bool advisor_owns; /* advisor_mode is scan-time: the kernel sets pages_to_scan */
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
        uint64_t cpu_budget;    /* KSM_CPU_BUDGET, percent of one CPU (0: none), for the words of cpu_capped */
        bool unmerge;           /* without run: also unmerge (KSM_STOP_MODE=unmerge, and memory can take it) */
        bool unmerge_refused;   /* without run: KSM_STOP_MODE=unmerge, but memory could not take it */
        bool adaptive;          /* with run: KSM_POLICY=adaptive's controller set npages and sleep_ms */
        uint64_t adaptive_rate; /* with adaptive: pages/s */
        AdaptiveWhy adaptive_why;
} Decision;

/* What the policy carries from one adjustment to the next. */
typedef struct PolicyState {
        int64_t npages;     /* the original's npages: it carries on, whatever KSM_POLICY says */
        bool have_last;     /* an adjustment has decided before */
        uint64_t last_free; /* its free memory, kB */
        AdaptiveState adaptive;
        AdaptiveStep step; /* with KSM_POLICY=adaptive and KSM on: the controller's last step */
} PolicyState;

void policy_params(const Settings *s, uint64_t mem_total, PolicyParams *ret);
int64_t policy_clamp(const Settings *s, int64_t npages);
void policy_decide(const Settings *s, const PolicyParams *p, const Snapshot *snap, int64_t prev_npages, Decision *ret);
void policy_step(const Settings *s, const PolicyParams *p, const Snapshot *snap, Trigger trigger, PolicyState *st,
                 Decision *ret);
void policy_adaptive_check(const Settings *s, const Snapshot *snap, PolicyState *st, Decision *d);
