/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The adaptive scan controller over synthetic traces of KSM's counters. */
#include <check.h>

#include "adaptive.h"

#include "unit.h"

#define SEC UINT64_C(1000000)

static const AdaptiveSettings S = {
        .max_rate = 1000000,
        .min_rate = 2000,
        .max_cpu = 800,
        .max_check = 60 * SEC,
};

static const struct {
        uint64_t rate, pages, sleep_ms;
} knob_cases[] = {
        { 1000000, 10000, 10 }, { 10000, 100, 10 }, { 9999, 100, 10 }, { 5000, 100, 20 },
        { 2000, 100, 50 },      { 150, 100, 666 },  { 50, 100, 1000 }, { 0, 100, 1000 },
};

START_TEST(test_knobs) {
        uint64_t pages, sleep_ms;

        adaptive_knobs(knob_cases[_i].rate, &pages, &sleep_ms);
        ck_assert_uint_eq(pages, knob_cases[_i].pages);
        ck_assert_uint_eq(sleep_ms, knob_cases[_i].sleep_ms);
}
END_TEST

/* KSM merging 2 GiB of duplicates, as seen on this kernel: volatile pages first, merged over two scans. */
START_TEST(test_merge_then_back_off) {
        AdaptiveState st = {};
        AdaptiveStep step;
        KsmCounters c = { 0 };
        static const uint64_t floor_trace[] = { 250000, 62500, 15625, 3906, 2000, 2000 };

        adaptive_step(&S, &st, &c, -1, false, &step);
        ck_assert_int_eq(step.why, WHY_START);
        ck_assert_uint_eq(st.rate, 1000000);
        ck_assert_uint_eq(step.pages_to_scan, 10000);
        ck_assert_uint_eq(step.sleep_ms, 10);

        /* Mid first scan: pages turn volatile; no full scan yet: hold. */
        c = (KsmCounters) { .pages_volatile = 300000 };
        adaptive_step(&S, &st, &c, 500, false, &step);
        ck_assert_int_eq(step.why, WHY_NEW_PAGES); /* a jump in candidates */
        c = (KsmCounters) { .full_scans = 1, .pages_shared = 1800, .pages_sharing = 230000, .pages_volatile = 290000 };
        adaptive_step(&S, &st, &c, 700, false, &step);
        ck_assert_int_eq(step.why, WHY_PAYING);
        ck_assert_uint_eq(st.rate, 1000000);
        c = (KsmCounters) { .full_scans = 2, .pages_shared = 1843, .pages_sharing = 471856, .pages_unshared = 52000 };
        adaptive_step(&S, &st, &c, 700, false, &step);
        ck_assert_int_eq(step.why, WHY_PAYING);

        /* Everything merged: each full scan now merges nothing; quarter the rate per scan, to the floor. */
        for (size_t i = 0; i < sizeof(floor_trace) / sizeof(floor_trace[0]); i++) {
                c.full_scans++;
                c.pages_sharing += 10; /* a trickle, below worthwhile */
                adaptive_step(&S, &st, &c, 300, false, &step);
                ck_assert_int_eq(step.why, WHY_IDLE);
                ck_assert_uint_eq(st.rate, floor_trace[i]);
        }
        ck_assert_uint_eq(step.pages_to_scan, 100);
        ck_assert_uint_eq(step.sleep_ms, 50);
        /* At 2000 pages/s a full scan of 525699 pages takes 263 s: wait at most the interval. */
        ck_assert_uint_eq(step.next_check, 60 * SEC);

        /* No full scan completed since: hold, whatever the time. */
        adaptive_step(&S, &st, &c, 10, false, &step);
        ck_assert_int_eq(step.why, WHY_HOLD);
        ck_assert_uint_eq(st.rate, 2000);
}
END_TEST

START_TEST(test_fast_again) {
        AdaptiveState st = {};
        AdaptiveStep step;
        KsmCounters c = { .full_scans = 10, .pages_shared = 1000, .pages_sharing = 400000, .pages_unshared = 20000 };

        adaptive_step(&S, &st, &c, -1, false, &step);
        st.rate = S.min_rate;

        /* A guest event: the fastest rate at once. */
        adaptive_step(&S, &st, &c, 5, true, &step);
        ck_assert_int_eq(step.why, WHY_EVENT);
        ck_assert_uint_eq(st.rate, S.max_rate);

        /* A jump in unshared + volatile pages (a guest that started without telling anyone). */
        st.rate = S.min_rate;
        c.pages_volatile = 131072;
        adaptive_step(&S, &st, &c, 5, false, &step);
        ck_assert_int_eq(step.why, WHY_NEW_PAGES);
        ck_assert_uint_eq(st.rate, S.max_rate);

        /* A small wobble is not a jump. */
        st.rate = S.min_rate;
        c.pages_volatile += 500;
        adaptive_step(&S, &st, &c, 5, false, &step);
        ck_assert_int_eq(step.why, WHY_HOLD);
        ck_assert_uint_eq(st.rate, S.min_rate);

        /* run=2 unmerged everything: counters back to zero. */
        c = (KsmCounters) { .full_scans = 0 };
        adaptive_step(&S, &st, &c, 5, false, &step);
        ck_assert_int_eq(step.why, WHY_RESET);
        ck_assert_uint_eq(st.rate, S.max_rate);
}
END_TEST

START_TEST(test_cpu_ceiling) {
        AdaptiveState st = {};
        AdaptiveStep step;
        KsmCounters c = { .full_scans = 1, .pages_sharing = 1000, .pages_unshared = 500000 };

        adaptive_step(&S, &st, &c, -1, false, &step);
        /* Still paying, but over 80 %: halve at every check, never under the floor. */
        for (uint64_t want = 500000;; want /= 2) {
                c.full_scans++;
                c.pages_sharing += 5000;
                adaptive_step(&S, &st, &c, 900, false, &step);
                ck_assert_int_eq(step.why, WHY_CPU);
                ck_assert_uint_eq(st.rate, want < 2000 ? 2000 : want);
                if (want < 2000)
                        break;
        }
        /* Under the ceiling again, and scans still pay: double back up, one full scan at a time. */
        for (uint64_t want = 4000; want < 1000000; want *= 2) {
                c.full_scans++;
                c.pages_sharing += 5000;
                adaptive_step(&S, &st, &c, 500, false, &step);
                ck_assert_int_eq(step.why, WHY_PAYING);
                ck_assert_uint_eq(st.rate, want);
        }
        /* An event overrides the ceiling for this step: new memory to merge now. */
        adaptive_step(&S, &st, &c, 900, true, &step);
        ck_assert_int_eq(step.why, WHY_EVENT);
        ck_assert_uint_eq(st.rate, S.max_rate);
        /* No ceiling: the CPU figure does not matter. */
        {
                AdaptiveSettings open = S;
                AdaptiveState st2 = {};

                open.max_cpu = 0;
                adaptive_step(&open, &st2, &c, -1, false, &step);
                c.full_scans++;
                c.pages_sharing += 5000;
                adaptive_step(&open, &st2, &c, 1000, false, &step);
                ck_assert_int_eq(step.why, WHY_PAYING);
                ck_assert_uint_eq(st2.rate, S.max_rate);
        }
}
END_TEST

/* A kernel without ksm_zero_pages or pages_volatile, or whose full_scans never moves: no crash, bounded checks. */
START_TEST(test_old_kernel) {
        AdaptiveState st = {};
        AdaptiveStep step;
        KsmCounters c = {};

        for (int i = 0; i < 5; i++) {
                adaptive_step(&S, &st, &c, -1, false, &step);
                ck_assert_uint_ge(step.next_check, SEC / 2);
                ck_assert_uint_le(step.next_check, 60 * SEC);
        }
        ck_assert_uint_eq(st.rate, S.max_rate); /* never judged a full scan: never backed off */
}
END_TEST

/* Checks follow the expected end of the next full scan: 525000 pages at 1M pages/s, plus a quarter. */
START_TEST(test_cadence) {
        AdaptiveState st = {};
        AdaptiveStep step;
        KsmCounters c = { .pages_shared = 1000, .pages_sharing = 470000, .pages_unshared = 54000 };

        adaptive_step(&S, &st, &c, -1, false, &step);
        ck_assert_uint_eq(step.next_check, 525000 * 5 / 4);
        /* Nothing to scan: the 0.5 s minimum, no busy polling. */
        st = (AdaptiveState) {};
        c = (KsmCounters) {};
        adaptive_step(&S, &st, &c, -1, false, &step);
        ck_assert_uint_eq(step.next_check, SEC / 2);
}
END_TEST

int main(void) {
        Suite *s = suite_create("adaptive");
        TCase *tc = tcase_create("controller");

        tcase_add_loop_test(tc, test_knobs, 0, sizeof(knob_cases) / sizeof(knob_cases[0]));
        tcase_add_test(tc, test_merge_then_back_off);
        tcase_add_test(tc, test_fast_again);
        tcase_add_test(tc, test_cpu_ceiling);
        tcase_add_test(tc, test_old_kernel);
        tcase_add_test(tc, test_cadence);
        suite_add_tcase(s, tc);
        return unit_run(s);
}
