/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The adaptive scan controller: fast while full scans merge, backing off when they stop paying. */
#include "adaptive.h"

/* At or above this rate ksmd wakes every 10 ms (the original's floor); below, it wakes less often. */
#define FAST_SLEEP_MS 10
#define SLOW_PAGES    100
#define MAX_SLEEP_MS  1000
#define MIN_CHECK     UINT64_C(500000) /* 0.5 s: never poll faster than this */

const char *adaptive_why_string(AdaptiveWhy why) {
        static const char *const s[] = {
                [WHY_HOLD] = "holding",
                [WHY_START] = "KSM started: scanning fast",
                [WHY_EVENT] = "guests changed: scanning fast",
                [WHY_NEW_PAGES] = "new mergeable pages: scanning fast",
                [WHY_RESET] = "counters reset: scanning fast",
                [WHY_PAYING] = "full scans still merging: scanning fast",
                [WHY_IDLE] = "full scans merge nothing: backing off",
                [WHY_CPU] = "ksmd over its CPU ceiling: backing off",
        };

        return why < sizeof(s) / sizeof(s[0]) ? s[why] : "?";
}

/**
 * adaptive_knobs() - pages_to_scan and sleep_millisecs for a scan rate in pages/s.
 *
 * Fast rates wake ksmd every 10 ms with as many pages as it takes; slow ones scan 100 pages a wake-up
 * and sleep longer, so an idle ksmd wakes rarely.
 */
void adaptive_knobs(uint64_t rate, uint64_t *ret_pages, uint64_t *ret_sleep_ms) {
        if (rate == 0)
                rate = 1;
        if (rate >= SLOW_PAGES * 1000 / FAST_SLEEP_MS) {
                *ret_pages = rate * FAST_SLEEP_MS / 1000;
                *ret_sleep_ms = FAST_SLEEP_MS;
                return;
        }
        *ret_pages = SLOW_PAGES;
        *ret_sleep_ms = SLOW_PAGES * 1000 / rate;
        if (*ret_sleep_ms > MAX_SLEEP_MS)
                *ret_sleep_ms = MAX_SLEEP_MS;
}

static uint64_t merged(const KsmCounters *c) {
        return c->pages_sharing + c->zero_pages;
}

static uint64_t scanned_per_full_scan(const KsmCounters *c) {
        return c->pages_shared + c->pages_sharing + c->pages_unshared + c->pages_volatile;
}

/**
 * adaptive_step() - one check of the controller: the rate to scan at now, and when to look again.
 * @cpu_permille: ksmd's CPU since the previous check, ‰ of one CPU; negative when unknown.
 * @event: a guest started or stopped, or memory pressure rose, since the previous check.
 *
 * Scan at the fastest rate when new mergeable memory appears (KSM turned on, a guest event, a jump in
 * unshared or volatile pages) and for as long as each full scan still merges a worthwhile amount (after
 * a cut, doubling back up); when a full scan merges nothing worthwhile, quarter the rate, down to the
 * floor; halve it at every check that finds ksmd over its CPU ceiling. Checks follow the expected end
 * of the next full scan, not a fixed interval.
 */
void adaptive_step(const AdaptiveSettings *s, AdaptiveState *st, const KsmCounters *c, int cpu_permille, bool event,
                   AdaptiveStep *ret) {
        AdaptiveWhy why = WHY_HOLD;
        bool over_cpu = s->max_cpu > 0 && cpu_permille > (int) s->max_cpu;
        uint64_t candidates_then, candidates_now, scan_pages, expected;

        candidates_then = st->last.pages_unshared + st->last.pages_volatile;
        candidates_now = c->pages_unshared + c->pages_volatile;

        if (!st->started) {
                st->started = true;
                st->rate = s->max_rate;
                st->at_scan = *c;
                why = WHY_START;
        } else if (event) {
                /* New memory to merge now: the CPU ceiling is judged again at the next check. */
                st->rate = s->max_rate;
                st->at_scan = *c;
                why = WHY_EVENT;
        } else if (c->full_scans < st->at_scan.full_scans || merged(c) + 1024 < merged(&st->last) / 2) {
                /* Counters went back: run=2 unmerged everything. Whatever merges next is new. */
                st->rate = s->max_rate;
                st->at_scan = *c;
                why = WHY_RESET;
        } else if (candidates_now > candidates_then + ADAPTIVE_WORTHWHILE_PAGES * 4 &&
                   candidates_now > candidates_then + candidates_then / 20) {
                st->rate = s->max_rate;
                why = WHY_NEW_PAGES;
        } else if (over_cpu) {
                st->rate = st->rate / 2 > s->min_rate ? st->rate / 2 : s->min_rate;
                why = WHY_CPU;
        } else if (c->full_scans > st->at_scan.full_scans) {
                uint64_t scans = c->full_scans - st->at_scan.full_scans;
                uint64_t gain = merged(c) > merged(&st->at_scan) ? merged(c) - merged(&st->at_scan) : 0;
                uint64_t worthwhile = scanned_per_full_scan(c) * ADAPTIVE_WORTHWHILE_PERMILLE / 1000;

                if (worthwhile < ADAPTIVE_WORTHWHILE_PAGES)
                        worthwhile = ADAPTIVE_WORTHWHILE_PAGES;
                if (gain / scans >= worthwhile) {
                        /* Still paying: back up to full speed, doubling (after a CPU cut or a back-off). */
                        st->rate = st->rate > s->max_rate / 2 ? s->max_rate : st->rate * 2;
                        why = WHY_PAYING;
                } else {
                        st->rate = st->rate / 4 > s->min_rate ? st->rate / 4 : s->min_rate;
                        why = WHY_IDLE;
                }
                st->at_scan = *c;
        }

        if (st->rate > s->max_rate)
                st->rate = s->max_rate;
        if (st->rate < s->min_rate)
                st->rate = s->min_rate;
        st->last = *c;

        *ret = (AdaptiveStep) { .why = why };
        adaptive_knobs(st->rate, &ret->pages_to_scan, &ret->sleep_ms);

        /* Look again when the next full scan should be done; a little after, so that it is. */
        scan_pages = scanned_per_full_scan(c);
        expected = scan_pages * UINT64_C(1000000) / (st->rate ? st->rate : 1);
        expected += expected / 4;
        if (expected < MIN_CHECK)
                expected = MIN_CHECK;
        if (expected > s->max_check)
                expected = s->max_check;
        ret->next_check = expected;
}
