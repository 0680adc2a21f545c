/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tuning policy against hand-computed cases at every branch and boundary of the original's formulas. */
#include <check.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

#include "unit.h"

#define GiB_KB (UINT64_C(1024) * 1024)

static Settings defaults(void) {
        Settings s;

        settings_init(&s);
        s.sleep_msec = 10; /* the original's, also in a -Ddefaults=proxmox build */
        return s;
}

/* sleep = SLEEP_MSEC × 16 GiB / MemTotal (floor 10); thres = MemTotal × COEF / 100 (at least CONST). */
static const struct {
        const char *what;
        int64_t sleep_msec, coef, cnst;
        uint64_t total;
        uint64_t sleep, thres;
} param_cases[] = {
        { "16 GiB host: the reference point", 10, 20, 2048, 16 * GiB_KB, 10, 3355443 },
        { "1 GiB host sleeps 16 times longer", 10, 20, 2048, 1 * GiB_KB, 160, 209715 },
        { "tiny host: THRES_CONST floor", 10, 20, 2048, 8000, 20971, 2048 },
        { "64 GiB host: sleep floor of 10", 10, 20, 2048, 64 * GiB_KB, 10, 13421772 },
        { "sleep truncates to 11", 10, 20, 2048, 15252014, 11, 3050402 },
        { "sleep truncates to 10 just above", 10, 20, 2048, 15252015, 10, 3050403 },
        { "SLEEP_MSEC 0 still sleeps 10", 0, 20, 2048, 16 * GiB_KB, 10, 3355443 },
        { "COEF 0: threshold is CONST", 10, 0, 5000, 16 * GiB_KB, 10, 5000 },
        { "COEF 100: threshold is all memory", 10, 100, 2048, 4 * GiB_KB, 40, 4 * GiB_KB },
        { "CONST above COEF's share", 10, 20, 4000000, 16 * GiB_KB, 10, 4000000 },
        { "24 TiB host: no overflow", 10, 20, 2048, UINT64_C(25769803776), 10, UINT64_C(5153960755) },
        { "large SLEEP_MSEC", 1000000, 20, 2048, 16 * GiB_KB, 1000000, 3355443 },
};

START_TEST(test_params) {
        Settings s = defaults();
        PolicyParams p;

        s.sleep_msec = param_cases[_i].sleep_msec;
        s.thres_coef = param_cases[_i].coef;
        s.thres_const = param_cases[_i].cnst;
        policy_params(&s, param_cases[_i].total, &p);
        ck_assert_msg(p.sleep_ms == param_cases[_i].sleep, "%s: sleep %llu, want %llu", param_cases[_i].what,
                      (unsigned long long) p.sleep_ms, (unsigned long long) param_cases[_i].sleep);
        ck_assert_msg(p.thres == param_cases[_i].thres, "%s: thres %llu, want %llu", param_cases[_i].what,
                      (unsigned long long) p.thres, (unsigned long long) param_cases[_i].thres);
        ck_assert_uint_eq(p.total, param_cases[_i].total);
        settings_done(&s);
}
END_TEST

/* With default settings on a 16 GiB host: total 16777216 kB, thres 3355443 kB, sleep 10. */
#define TOTAL (16 * GiB_KB)
#define THRES UINT64_C(3355443)

static const struct {
        const char *what;
        uint64_t mem_free, buffers, cached, committed;
        int64_t prev;
        bool run, boost;
        int64_t npages;
} decide_cases[] = {
        { "plenty free, no guests: stop", 10000000, 0, 0, 0, 0, false, false, 0 },
        { "stop leaves npages alone", 10000000, 0, 0, 0, 700, false, false, 700 },
        { "free == thres is not above it: run, decay to MIN", THRES, 0, 0, 0, 0, true, false, 64 },
        { "free one below thres: boost", THRES - 1, 0, 0, 0, 0, true, true, 300 },
        { "free one above thres, no guests: stop", THRES + 1, 0, 0, 0, 0, false, false, 0 },
        { "committed + thres == total: run, decay", THRES + 1, 0, 0, TOTAL - THRES, 300, true, false, 250 },
        { "committed + thres one below total: stop", THRES + 1, 0, 0, TOTAL - THRES - 1, 300, false, false, 300 },
        { "committed + thres above total, free high: decay", 9000000, 0, 0, TOTAL, 1000, true, false, 950 },
        { "boost clamps at MAX", 1000, 0, 0, 0, 1100, true, true, 1250 },
        { "boost at MAX stays", 1000, 0, 0, 0, 1250, true, true, 1250 },
        { "decay clamps at MIN", 9000000, 0, 0, TOTAL, 100, true, false, 64 },
        { "decay at MIN stays", 9000000, 0, 0, TOTAL, 64, true, false, 64 },
        { "npages from a larger MAX is clamped", 9000000, 0, 0, TOTAL, 5000, true, false, 1250 },
        { "free counts Buffers and Cached: above", 1000000, 1000000, 1355444, 0, 0, false, false, 0 },
        { "free counts Buffers and Cached: below", 1000000, 1000000, 1355442, 0, 0, true, true, 300 },
        { "huge committed saturates, runs", 9000000, 0, 0, UINT64_MAX, 300, true, false, 250 },
};

START_TEST(test_decide) {
        Settings s = defaults();
        PolicyParams p;
        Snapshot snap = {
                .mem_total = TOTAL,
                .mem_free = decide_cases[_i].mem_free,
                .buffers = decide_cases[_i].buffers,
                .cached = decide_cases[_i].cached,
                .committed = decide_cases[_i].committed,
        };
        Decision d;

        policy_params(&s, TOTAL, &p);
        ck_assert_uint_eq(p.thres, THRES);
        policy_decide(&s, &p, &snap, decide_cases[_i].prev, &d);
        ck_assert_msg(d.run == decide_cases[_i].run, "%s: run %d", decide_cases[_i].what, d.run);
        if (d.run) {
                ck_assert_msg(d.boost == decide_cases[_i].boost, "%s: boost %d", decide_cases[_i].what, d.boost);
                ck_assert_uint_eq(d.sleep_ms, 10);
        }
        ck_assert_msg(d.npages == decide_cases[_i].npages, "%s: npages %lld, want %lld", decide_cases[_i].what,
                      (long long) d.npages, (long long) decide_cases[_i].npages);
        ck_assert_uint_eq(d.thres, THRES);
        ck_assert_uint_eq(d.free, decide_cases[_i].mem_free + decide_cases[_i].buffers + decide_cases[_i].cached);
        settings_done(&s);
}
END_TEST

/* The original's sequence from npages 0 under steady pressure, then relief, with custom settings. */
START_TEST(test_sequence_custom) {
        Settings s = defaults();
        PolicyParams p;
        Snapshot press = { .mem_total = 1 * GiB_KB, .mem_free = 1000, .committed = 0 };
        Snapshot ease = { .mem_total = 1 * GiB_KB, .mem_free = 900000, .committed = 1 * GiB_KB };
        /* 0+1000 is below MIN: 1500; then 2500, capped at MAX; relief decays by 200 down to MIN. */
        static const int64_t want[] = { 1500, 2500, 2500, 2500, 2300, 2100, 1900, 1700, 1500, 1500 };
        int64_t npages = 0;
        Decision d;

        s.npages_boost = 1000;
        s.npages_decay = -200;
        s.npages_min = 1500;
        s.npages_max = 2500;
        s.thres_coef = 50;
        s.sleep_msec = 5;
        policy_params(&s, 1 * GiB_KB, &p);
        ck_assert_uint_eq(p.thres, 524288);
        ck_assert_uint_eq(p.sleep_ms, 80);

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                policy_decide(&s, &p, i < 4 ? &press : &ease, npages, &d);
                ck_assert(d.run);
                ck_assert_uint_eq(d.sleep_ms, 80);
                npages = d.npages;
                ck_assert_msg(npages == want[i], "step %zu: %lld", i, (long long) npages);
        }
        settings_done(&s);
}
END_TEST

START_TEST(test_clamp) {
        Settings s = defaults();

        ck_assert_int_eq(policy_clamp(&s, INT64_MIN), 64);
        ck_assert_int_eq(policy_clamp(&s, 63), 64);
        ck_assert_int_eq(policy_clamp(&s, 64), 64);
        ck_assert_int_eq(policy_clamp(&s, 1250), 1250);
        ck_assert_int_eq(policy_clamp(&s, 1251), 1250);
        ck_assert_int_eq(policy_clamp(&s, INT64_MAX), 1250);
        settings_done(&s);
}
END_TEST

/* Boost near INT64_MAX must not wrap around to a negative npages. */
START_TEST(test_no_wraparound) {
        Settings s = defaults();
        PolicyParams p;
        Snapshot snap = { .mem_total = TOTAL, .mem_free = 0 };
        Decision d;

        s.npages_max = INT64_MAX;
        s.npages_boost = 1000000000;
        policy_params(&s, TOTAL, &p);
        policy_decide(&s, &p, &snap, INT64_MAX - 5, &d);
        ck_assert(d.run);
        ck_assert_int_eq(d.npages, INT64_MAX);
        settings_done(&s);
}
END_TEST

/* The opt-in behaviour for today's kernels, on the same 16 GiB host (thres 3355443 kB); one case a row. */
/* clang-format off */
static const struct {
        const char *what;
        int64_t free_source, cpu_budget, stop_mode;
        uint64_t mem_free, cached, mem_available, committed, merged;
        bool has_available, has_cpu;
        unsigned cpu_permille;
        int64_t prev;
        bool run, boost, cpu_capped, unmerge, unmerge_refused;
        int64_t npages;
        uint64_t free;
} modern_cases[] = {
        /* MemAvailable: Cached full of tmpfs looks free to the original, not to MemAvailable. */
        { "classic counts Cached: stop", FREE_CLASSIC, 0, STOP_STOP, 1000, 5000000, 3000000, 0, 0, true, false, 0, 0,
          false, false, false, false, false, 0, 5001000 },
        { "available: short, boost", FREE_AVAILABLE, 0, STOP_STOP, 1000, 5000000, 3000000, 0, 0, true, false, 0, 0,
          true, true, false, false, false, 300, 3000000 },
        { "available on an old kernel: classic", FREE_AVAILABLE, 0, STOP_STOP, 1000, 5000000, 0, 0, 0, false, false, 0,
          0, false, false, false, false, false, 0, 5001000 },
        /* ksmd's CPU budget of 10 % = 100 ‰. */
        { "over the budget: decay instead of boost", FREE_CLASSIC, 10, STOP_STOP, 1000, 0, 0, 0, 0, true, true, 101,
          500, true, false, true, false, false, 450, 1000 },
        { "at the budget: boost", FREE_CLASSIC, 10, STOP_STOP, 1000, 0, 0, 0, 0, true, true, 100, 500, true, true, false,
          false, false, 800, 1000 },
        { "no CPU figure yet: boost", FREE_CLASSIC, 10, STOP_STOP, 1000, 0, 0, 0, 0, true, false, 999, 500, true, true,
          false, false, false, 800, 1000 },
        { "no budget: boost whatever ksmd uses", FREE_CLASSIC, 0, STOP_STOP, 1000, 0, 0, 0, 0, true, true, 1000, 500,
          true, true, false, false, false, 800, 1000 },
        { "budget does not matter when not short", FREE_CLASSIC, 10, STOP_STOP, 9000000, 0, 0, 16777216, 0, true, true,
          1000, 500, true, false, false, false, false, 450, 9000000 },
        /* Unmerging when stopping: 10000000 free leaves 6644557 above the threshold. */
        { "unmerge: memory takes it", FREE_CLASSIC, 0, STOP_UNMERGE, 10000000, 0, 8000000, 0, 1000000, true, false, 0,
          300, false, false, false, true, false, 300, 10000000 },
        { "unmerge: would fall below the threshold", FREE_CLASSIC, 0, STOP_UNMERGE, 10000000, 0, 8000000, 0, 7000000,
          true, false, 0, 300, false, false, false, false, true, 300, 10000000 },
        { "unmerge: exactly at the threshold after", FREE_CLASSIC, 0, STOP_UNMERGE, 10000000, 0, 8000000, 0, 6644557,
          true, false, 0, 300, false, false, false, false, true, 300, 10000000 },
        { "unmerge: MemAvailable too small", FREE_CLASSIC, 0, STOP_UNMERGE, 10000000, 0, 500000, 0, 1000000, true,
          false, 0, 300, false, false, false, false, true, 300, 10000000 },
        { "unmerge: nothing merged, plain stop", FREE_CLASSIC, 0, STOP_UNMERGE, 10000000, 0, 8000000, 0, 0, true, false,
          0, 300, false, false, false, false, false, 300, 10000000 },
        { "stop mode stop never unmerges", FREE_CLASSIC, 0, STOP_STOP, 10000000, 0, 8000000, 0, 1000000, true, false,
          0, 300, false, false, false, false, false, 300, 10000000 },
        { "unmerge mode while running: nothing to unmerge", FREE_CLASSIC, 0, STOP_UNMERGE, 1000, 0, 8000000, 0,
          1000000, true, false, 0, 300, true, true, false, false, false, 600, 1000 },
};
/* clang-format on */

START_TEST(test_modern) {
        Settings s = defaults();
        PolicyParams p;
        Snapshot snap = {
                .mem_total = TOTAL,
                .mem_free = modern_cases[_i].mem_free,
                .cached = modern_cases[_i].cached,
                .mem_available = modern_cases[_i].mem_available,
                .has_mem_available = modern_cases[_i].has_available,
                .committed = modern_cases[_i].committed,
                .merged = modern_cases[_i].merged,
                .has_ksmd_cpu = modern_cases[_i].has_cpu,
                .ksmd_cpu_permille = modern_cases[_i].cpu_permille,
        };
        Decision d;

        s.free_source = modern_cases[_i].free_source;
        s.cpu_budget = modern_cases[_i].cpu_budget;
        s.stop_mode = modern_cases[_i].stop_mode;
        policy_params(&s, TOTAL, &p);
        policy_decide(&s, &p, &snap, modern_cases[_i].prev, &d);
        ck_assert_msg(d.run == modern_cases[_i].run, "%s: run %d", modern_cases[_i].what, d.run);
        ck_assert_msg(d.boost == modern_cases[_i].boost, "%s: boost %d", modern_cases[_i].what, d.boost);
        ck_assert_msg(d.cpu_capped == modern_cases[_i].cpu_capped, "%s: capped", modern_cases[_i].what);
        ck_assert_msg(d.unmerge == modern_cases[_i].unmerge, "%s: unmerge %d", modern_cases[_i].what, d.unmerge);
        ck_assert_msg(d.unmerge_refused == modern_cases[_i].unmerge_refused, "%s: refused", modern_cases[_i].what);
        ck_assert_msg(d.npages == modern_cases[_i].npages, "%s: npages %lld", modern_cases[_i].what,
                      (long long) d.npages);
        ck_assert_msg(d.free == modern_cases[_i].free, "%s: free %llu", modern_cases[_i].what,
                      (unsigned long long) d.free);
        settings_done(&s);
}
END_TEST

/* Free memory that the guests' growth took, which a check answered, is not "pressure rose" again; memory
 * something else took is. */
START_TEST(test_check_growth_is_not_pressure) {
        Settings s = defaults();
        PolicyParams p;
        PolicyState st = { .npages = 64 };
        Snapshot snap = { .mem_total = 16 * GiB_KB,
                          .mem_free = 8 * GiB_KB,
                          .committed = 14 * GiB_KB, /* with the threshold, more than memory: KSM runs */
                          .has_guests_resident = true,
                          .guests_resident = 1 * GiB_KB,
                          .taken = 1000000 };
        Decision d;

        s.policy = POLICY_ADAPTIVE;
        policy_params(&s, 16 * GiB_KB, &p);
        policy_step(&s, &p, &snap, TRIGGER_START_UP, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_START);

        /* A check 1 s later: the guests grew by 2 GiB, and free memory fell by as much. */
        snap.taken += 1000000;
        snap.guests_resident += 2 * GiB_KB;
        snap.mem_free -= 2 * GiB_KB;
        policy_adaptive_check(&s, &snap, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_GROWING);
        snap.taken += 1000000;
        policy_step(&s, &p, &snap, TRIGGER_INTERVAL, &st, &d);
        ck_assert_int_ne(d.adaptive_why, WHY_EVENT);

        /* 2 GiB more gone, the guests no bigger: news at the next adjustment, whatever the checks saw. */
        snap.taken += 1000000;
        snap.mem_free -= 2 * GiB_KB;
        policy_adaptive_check(&s, &snap, &st, &d);
        ck_assert_int_ne(d.adaptive_why, WHY_GROWING);
        snap.taken += 1000000;
        policy_step(&s, &p, &snap, TRIGGER_INTERVAL, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_EVENT);
        settings_done(&s);
}
END_TEST

/* policy_step(): the trigger and falling free memory are the adaptive controller's "event". */
START_TEST(test_step_trigger) {
        Settings s = defaults();
        PolicyParams p;
        PolicyState st = { .npages = 64 };
        Snapshot short_of_memory = { .mem_total = 16 * GiB_KB, .mem_free = 1 * GiB_KB, .committed = 8 * GiB_KB };
        Snapshot plenty = { .mem_total = 16 * GiB_KB, .mem_free = 15 * GiB_KB };
        Decision d;

        s.policy = POLICY_ADAPTIVE;
        policy_params(&s, 16 * GiB_KB, &p);

        policy_step(&s, &p, &short_of_memory, TRIGGER_START_UP, &st, &d);
        ck_assert(d.run && d.adaptive);
        ck_assert_int_eq(d.adaptive_why, WHY_START);
        ck_assert_int_eq(st.npages, 64 + 300); /* the original's npages carries on underneath */
        ck_assert_int_eq(d.npages, (int64_t) st.step.pages_to_scan);

        /* No event, and no full scan yet since the start: still covering what was there. */
        policy_step(&s, &p, &short_of_memory, TRIGGER_INTERVAL, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_SWEEP);
        policy_step(&s, &p, &short_of_memory, TRIGGER_SIGNAL, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_SWEEP);
        for (Trigger t = TRIGGER_RELOAD; t <= TRIGGER_RECONNECT; t++) {
                policy_step(&s, &p, &short_of_memory, t, &st, &d);
                ck_assert_msg(d.adaptive_why == WHY_EVENT, "trigger %d", t);
        }

        /* Free memory fallen by more than 5% of MemTotal since the last adjustment: an event too. */
        short_of_memory.mem_free -= GiB_KB;
        policy_step(&s, &p, &short_of_memory, TRIGGER_INTERVAL, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_EVENT);

        /* KSM off resets the controller: the next start is a start. */
        policy_step(&s, &p, &plenty, TRIGGER_INTERVAL, &st, &d);
        ck_assert(!d.run && !d.adaptive);
        ck_assert(!st.adaptive.started);
        policy_step(&s, &p, &short_of_memory, TRIGGER_INTERVAL, &st, &d);
        ck_assert_int_eq(d.adaptive_why, WHY_START);

        /* The adaptive check between adjustments changes only the rate. */
        policy_adaptive_check(&s, &short_of_memory, &st, &d);
        ck_assert(d.run);
        ck_assert_int_eq(d.adaptive_why, WHY_SWEEP);

        /* The classic policy leaves the controller alone, whatever the trigger. */
        s.policy = POLICY_CLASSIC;
        st = (PolicyState) { .npages = 64 };
        policy_step(&s, &p, &short_of_memory, TRIGGER_GUEST_EVENT, &st, &d);
        ck_assert(d.run && !d.adaptive);
        ck_assert_int_eq(d.npages, 364);
        settings_done(&s);
}
END_TEST

static Suite *policy_suite(void) {
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_params, 0, sizeof(param_cases) / sizeof(param_cases[0]));
        tcase_add_loop_test(tc, test_decide, 0, sizeof(decide_cases) / sizeof(decide_cases[0]));
        tcase_add_test(tc, test_sequence_custom);
        tcase_add_test(tc, test_clamp);
        tcase_add_test(tc, test_no_wraparound);
        tcase_add_loop_test(tc, test_modern, 0, sizeof(modern_cases) / sizeof(modern_cases[0]));
        tcase_add_test(tc, test_step_trigger);
        tcase_add_test(tc, test_check_growth_is_not_pressure);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(policy_suite());
}
