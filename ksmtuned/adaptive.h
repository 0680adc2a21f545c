/* SPDX-License-Identifier: GPL-2.0-or-later */
/* KSM_POLICY=adaptive: how hard ksmd scans while on, from what its scanning yields. A pure controller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct AdaptiveSettings {
        uint64_t max_rate;  /* pages/s while scanning pays */
        uint64_t min_rate;  /* pages/s floor once it doesn't: still notices slow change */
        unsigned max_cpu;   /* ksmd's CPU ceiling, ‰ of one CPU; 0: none */
        uint64_t max_check; /* µs: the longest wait between checks */
} AdaptiveSettings;

/* KSM's counters as the kernel gives them; absent files read as 0. */
typedef struct KsmCounters {
        uint64_t full_scans;
        uint64_t pages_shared, pages_sharing, pages_unshared, pages_volatile, zero_pages;
} KsmCounters;

typedef enum AdaptiveWhy {
        WHY_HOLD,      /* nothing new: keep the rate */
        WHY_START,     /* KSM just turned on, or first check */
        WHY_EVENT,     /* a guest started or stopped, or memory pressure rose */
        WHY_NEW_PAGES, /* a jump in unshared/volatile pages: new mergeable memory */
        WHY_RESET,     /* the counters went back (an unmerge): start over */
        WHY_PAYING,    /* the last full scans still merged a worthwhile amount */
        WHY_IDLE,      /* full scans stopped yielding: back off */
        WHY_CPU,       /* ksmd over its CPU ceiling: back off */
} AdaptiveWhy;

typedef struct AdaptiveState {
        bool started;
        uint64_t rate;       /* pages/s now */
        KsmCounters at_scan; /* at the last full scan we judged */
        KsmCounters last;    /* at the last check */
} AdaptiveState;

typedef struct AdaptiveStep {
        uint64_t pages_to_scan;
        uint64_t sleep_ms;
        uint64_t next_check; /* µs from now */
        AdaptiveWhy why;
} AdaptiveStep;

/* A full scan that merged at least this many pages, or this share (‰) of the pages it scanned, paid. */
#define ADAPTIVE_WORTHWHILE_PAGES    256
#define ADAPTIVE_WORTHWHILE_PERMILLE 5

void adaptive_step(const AdaptiveSettings *s, AdaptiveState *st, const KsmCounters *c, int cpu_permille, bool event,
                   AdaptiveStep *ret);
void adaptive_knobs(uint64_t rate, uint64_t *ret_pages, uint64_t *ret_sleep_ms);
const char *adaptive_why_string(AdaptiveWhy why);
