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
        uint64_t pages_scanned; /* pages ksmd has looked at, ever (Linux 6.7+) */
        uint64_t pages_skipped; /* pages smart_scan passed over, ever (Linux 6.7+; 0 without) */
        bool has_pages_scanned;
} KsmCounters;

/* What one step of the controller sees. */
typedef struct AdaptiveInput {
        KsmCounters counters;
        int cpu_permille;   /* ksmd's CPU since the previous step, ‰ of one CPU; negative when unknown */
        bool event;         /* a guest started or stopped, a reload or reconnection, memory pressure rose */
        uint64_t now;       /* µs, CLOCK_MONOTONIC */
        bool has_guests;    /* guests_kb was read for this step */
        uint64_t guests_kb; /* the guest processes' resident memory (RSS), kB */
} AdaptiveInput;

/* Why the rate is what it is. WHY_CPU stays last: tests walk the range. */
typedef enum AdaptiveWhy {
        WHY_HOLD,      /* nothing scanned since the last check: keep the rate, look again later */
        WHY_START,     /* KSM just turned on, or first check */
        WHY_EVENT,     /* a guest started or stopped, or memory pressure rose */
        WHY_GROWING,   /* the guests' memory is growing: new pages to merge */
        WHY_SWEEP,     /* new memory not yet covered by a round of the scan: finish covering it at speed */
        WHY_NEW_PAGES, /* what ksmd scanned was largely pages it had not seen before */
        WHY_PENDING,   /* many pages wait for another look elsewhere in the round: go round to them at speed */
        WHY_RESET,     /* the counters went back (an unmerge): start over */
        WHY_PAYING,    /* what ksmd scanned since the last check merged a worthwhile share */
        WHY_SWEPT,     /* a sweep's second round is over, nothing waits for another look: back off */
        WHY_IDLE,      /* scanning stopped merging: back off */
        WHY_CPU,       /* ksmd over its CPU ceiling: back off */
} AdaptiveWhy;

typedef struct AdaptiveState {
        bool started;
        bool cpu_limited;        /* the rate was cut for the CPU ceiling and has not reached the maximum since */
        uint64_t rate;           /* pages/s now */
        KsmCounters last;        /* at the previous step */
        uint64_t last_time;      /* µs: the previous step */
        uint64_t sweep_until;    /* full_scans: scan fast until the counter reaches this; 0: not sweeping */
        uint64_t sweep_from;     /* pages_scanned + pages_skipped when the sweep's round began */
        uint64_t sweep_seen;     /* the pages KSM tracked then */
        bool sweep_again;        /* this round follows one that saw new pages: for their second visit */
        uint64_t sweep_new;      /* the pages that round saw for the first time */
        uint64_t sweep_resolved; /* pages merged or put in the unstable tree since this round began */
        uint64_t sweep_volatile; /* the fewest pages_volatile in the sweep's first round */
        uint64_t pending_from;   /* pages_scanned + pages_skipped when going round to the volatile pages began or
                                  * last merged enough; 0: not going round to them */
        uint64_t pending_merged; /* pages merged then */
        bool pending_gave_up;    /* a round went by without merging enough: not again until new memory */
        uint64_t sweep_skipped;  /* pages_skipped when the last sweep began */
        uint64_t page_ns;        /* ksmd's CPU per page scanned, ns, over the last CPU_SPAN that scanned enough */
        uint64_t watch_until;    /* µs: until then, the checks read the guests' memory, at most every 0.25 s */
        bool have_guests;
        uint64_t guests_kb;      /* the reading growth is judged against, at guests_time */
        uint64_t guests_time;    /* µs: when it was read */
        uint64_t guests_read;    /* µs: the last reading of the guests' memory */
        uint64_t announce_until; /* µs: until then, a guest's memory may still arrive (see adaptive_announce()) */
        uint64_t announced;      /* µs: the last announcement */
        uint64_t sweep_began;    /* µs: when the sweep began */
        uint64_t cpu_ns;         /* ksmd's CPU, ns, since the ceiling was last judged (see cpu_judge()) */
        uint64_t cpu_span;       /* µs those ns were measured over */
        uint64_t cpu_pages;      /* pages ksmd scanned meanwhile (pages_scanned; 0 without it) */
} AdaptiveState;

typedef struct AdaptiveStep {
        uint64_t pages_to_scan;
        uint64_t sleep_ms;
        uint64_t next_check; /* µs from now */
        bool watch_guests;   /* the next check should read the guests' memory (AdaptiveInput.guests_kb) */
        AdaptiveWhy why;
        /* Since the previous step, in pages: looked at (or estimated), passed over by smart_scan, newly merged,
         * newly seen or put in the unstable tree; and the pages KSM tracks now, of which volatile (seen, in
         * neither tree). What the judgement weighed, for the log. */
        uint64_t scanned, skipped, gained, seen, tracked, volatile_pages;
} AdaptiveStep;

/* Scanning pays while at least this share (‰) of the pages scanned since the last check was newly merged, newly
 * seen or newly put in the unstable tree, and at least ADAPTIVE_PAYING_PAGES pages were. */
#define ADAPTIVE_PAYING_PERMILLE 10
#define ADAPTIVE_PAYING_PAGES    64
/* Pages waiting for another look: pages_volatile at least this share (‰) of the pages KSM tracks, and at
 * least ADAPTIVE_PAYING_PAGES; the same amount merged counts as progress. */
#define ADAPTIVE_PENDING_PERMILLE 10
/* pages_to_scan grows by the time ksmd spends scanning (see adaptive_knobs()), to at most this many times
 * rate × 10 ms; the time per page is measured over half a second or more that scanned at least this many pages. */
#define ADAPTIVE_MAX_STRETCH     4
#define ADAPTIVE_PAGE_COST_PAGES 10000
/* After new memory, the yield is judged once ksmd has gone round all the pages it tracks (pages_scanned +
 * pages_skipped) without seeing new ones; where the kernel does not count the pages, after this many full
 * scans (the first may have begun past the new memory, whose pages merge at their second visit). */
#define ADAPTIVE_SWEEP_SCANS 3
/* The guests' memory grows when their RSS rises by at least this much since the reading it is compared with,
 * at this pace or faster. That reading is kept until it is half a second old, however often the checks come. */
#define ADAPTIVE_GROWTH_KB       UINT64_C(32768)
#define ADAPTIVE_GROWTH_KB_PER_S UINT64_C(16384)
/* How long after a guest event, or the last growth, the checks watch the guests' memory. */
#define ADAPTIVE_WATCH_USEC UINT64_C(120000000)
/* How long after a guest is announced the checks look at the guests' memory closely (see adaptive_announce()). */
#define ADAPTIVE_ANNOUNCE_USEC UINT64_C(30000000)

void adaptive_step(const AdaptiveSettings *s, AdaptiveState *st, const AdaptiveInput *in, AdaptiveStep *ret);
void adaptive_announce(AdaptiveState *st, uint64_t now);
void adaptive_knobs(uint64_t rate, uint64_t page_ns, uint64_t *ret_pages, uint64_t *ret_sleep_ms);
const char *adaptive_why_string(AdaptiveWhy why);
