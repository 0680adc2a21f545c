/* SPDX-License-Identifier: GPL-2.0-or-later */
/* apply.c: what a decision and the configuration write to a KSM directory, on temporary trees. */
#include "apply.h"
#include "fake-tree.h"
#include "ksm-sysfs.h"
#include "snapshot.h"

static FakeTree t;
static Applier a;
static Settings s;

static void setup(void) {
        int fd;

        fake_tree_new_ksm(&t, "apply", &fd);
        fake_ksm(&t);
        apply_init(&a, fd, t.ksm);
        settings_init(&s);
}

static void teardown(void) {
        settings_done(&s);
        fake_tree_free_ksm(&t, &a.ksm_fd);
}

/* What the manager does: read KSM as it stands, then apply @d to it. */
static void apply(const Decision *d, ApplyResult *ret) {
        Snapshot snap = {};

        snapshot_read_ksm(a.ksm_fd, &snap);
        apply_decision(&a, &s, d, &snap, ret);
}

static const Decision run_decision = {
        .run = true,
        .boost = true,
        .npages = 400,
        .sleep_ms = 25,
        .free = 100,
        .thres = 200,
        .total = 1000,
};

START_TEST(test_start_then_nothing_to_do) {
        ApplyResult res;

        apply(&run_decision, &res);
        ck_assert(res.changed);
        ck_assert(!res.failed);
        ck_assert_uint_eq(res.run, KSM_RUN_MERGE);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 400);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/sleep_millisecs"), 25);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 1);

        /* The same decision again: the knobs hold it already. */
        apply(&run_decision, &res);
        ck_assert(!res.changed);
        ck_assert_uint_eq(res.run, KSM_RUN_MERGE);
}
END_TEST

START_TEST(test_stop_and_unmerge) {
        Decision stop = { .run = false, .free = 900, .thres = 200, .total = 1000 };
        Decision unmerge = { .run = false, .unmerge = true, .free = 900, .thres = 200, .total = 1000 };
        ApplyResult res;

        apply(&run_decision, &res);
        apply(&stop, &res);
        ck_assert(res.changed);
        ck_assert_uint_eq(res.run, KSM_RUN_STOP);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 0);
        /* Stopped already: nothing written. */
        apply(&stop, &res);
        ck_assert(!res.changed);

        apply(&unmerge, &res);
        ck_assert(res.changed);
        ck_assert_uint_eq(res.run, KSM_RUN_UNMERGE);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 2);
        /* pages_to_scan and sleep_millisecs are left as the last start wrote them. */
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 400);
}
END_TEST

START_TEST(test_advisor_owns_pages_to_scan) {
        ApplyResult res;

        fake_put(&t, "ksm/advisor_mode", "none [scan-time]\n");
        apply(&run_decision, &res);
        ck_assert(a.advisor_owns);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 100); /* the kernel's */
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/sleep_millisecs"), 25);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 1);
}
END_TEST

START_TEST(test_failed_write_then_recovery) {
        char path[PATH_MAX];
        ApplyResult res;

        /* A knob that cannot be written: a directory where the file should be. */
        snprintf(path, sizeof(path), "%s/sleep_millisecs", t.ksm);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        apply(&run_decision, &res);
        ck_assert(res.failed);
        ck_assert_int_lt(a.knob[KNOB_SLEEP_MILLISECS].error, 0);
        ck_assert_int_eq(a.knob[KNOB_RUN].error, 0);

        ck_assert_int_eq(rmdir(path), 0);
        fake_put(&t, "ksm/sleep_millisecs", "20\n");
        apply(&run_decision, &res);
        ck_assert(!res.failed);
        ck_assert_int_eq(a.knob[KNOB_SLEEP_MILLISECS].error, 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/sleep_millisecs"), 25);
}
END_TEST

/* A knob someone else set: overwritten, noted once per outside value; not for the advisor's changes. */
START_TEST(test_outside_change) {
        ApplyResult res;

        apply(&run_decision, &res);
        ck_assert(a.have_written[KNOB_PAGES_TO_SCAN]);
        ck_assert(!a.outside_reported[KNOB_PAGES_TO_SCAN]);

        fake_put(&t, "ksm/pages_to_scan", "777\n");
        apply(&run_decision, &res);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 400); /* the decision stands */
        ck_assert(a.outside_reported[KNOB_PAGES_TO_SCAN]);
        ck_assert_uint_eq(a.outside[KNOB_PAGES_TO_SCAN], 777);
        ck_assert(!a.outside_reported[KNOB_SLEEP_MILLISECS]);

        fake_put(&t, "ksm/pages_to_scan", "555\n");
        apply(&run_decision, &res);
        ck_assert_uint_eq(a.outside[KNOB_PAGES_TO_SCAN], 555);

        /* Someone wrote what the decision says: adopted, nothing to note. */
        fake_put(&t, "ksm/sleep_millisecs", "25\n");
        apply(&run_decision, &res);
        ck_assert(!a.outside_reported[KNOB_SLEEP_MILLISECS]);

        /* While the advisor owns pages_to_scan, what it sets is not someone else's. */
        fake_put(&t, "ksm/advisor_mode", "none [scan-time]\n");
        apply(&run_decision, &res);
        ck_assert(!a.have_written[KNOB_PAGES_TO_SCAN]);
        fake_put(&t, "ksm/pages_to_scan", "4321\n");
        fake_put(&t, "ksm/advisor_mode", "[none] scan-time\n");
        apply(&run_decision, &res);
        ck_assert_uint_eq(a.outside[KNOB_PAGES_TO_SCAN], 555);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 400);
}
END_TEST

START_TEST(test_config_knobs) {
        Snapshot snap = {};
        char path[PATH_MAX];

        s.smart_scan = 0;
        s.use_zero_pages = 1;
        s.advisor_max_cpu = 50; /* this kernel lacks it: not created */
        apply_config(&a, &s, &snap);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/smart_scan"), 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/use_zero_pages"), 1);
        snprintf(path, sizeof(path), "%s/advisor_max_cpu", t.ksm);
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(a.knob[KNOB_ADVISOR_MAX_CPU].error, -ENOENT);
        /* Left empty: the kernel's values stay. */
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/max_page_sharing"), 256);

        apply_forget_config_errors(&a);
        ck_assert_int_eq(a.knob[KNOB_ADVISOR_MAX_CPU].error, 0);

        s.advisor_mode = ADVISOR_SCAN_TIME;
        apply_config(&a, &s, &snap);
        snprintf(path, sizeof(path), "%s/advisor_mode", t.ksm);
        {
                _cleanup_free_ char *mode = NULL;

                ck_assert_int_eq(read_full_file_at(AT_FDCWD, path, 4096, &mode, NULL), 0);
                ck_assert_str_eq(mode, "scan-time\n");
        }
}
END_TEST

START_TEST(test_config_knob_needs_unmerge) {
        Snapshot snap = {};

        fake_put(&t, "ksm/pages_shared", "10\n");
        fake_put(&t, "ksm/pages_sharing", "1000\n");
        fake_put(&t, "ksm/run", "1\n");
        s.max_page_sharing = 512;
        s.merge_across_nodes = 0;

        /* MemAvailable cannot take the merged pages back: nothing changes. */
        snapshot_read_ksm(a.ksm_fd, &snap);
        snap.has_mem_available = true;
        snap.mem_available = snap.merged / 2;
        apply_config(&a, &s, &snap);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 1);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/max_page_sharing"), 256);

        /* It can: one unmerge, then both knobs. */
        snap.mem_available = snap.merged * 2;
        apply_config(&a, &s, &snap);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 2);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/max_page_sharing"), 512);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/merge_across_nodes"), 0);
}
END_TEST

START_TEST(test_replaced_directory_is_reopened) {
        char moved[PATH_MAX + 8];
        ApplyResult res;

        ck_assert(!apply_check_dir(&a));
        snprintf(moved, sizeof(moved), "%s.old", t.ksm);
        ck_assert_int_eq(rename(t.ksm, moved), 0);
        ck_assert_int_eq(mkdir(t.ksm, 0755), 0);
        fake_ksm(&t);
        ck_assert(apply_check_dir(&a));
        apply(&run_decision, &res);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 1);
        /* The old directory, inside the tree, goes with it. */
}
END_TEST

static Suite *apply_suite(void) {
        Suite *suite = suite_create("apply");
        TCase *tc = tcase_create("apply");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_start_then_nothing_to_do);
        tcase_add_test(tc, test_stop_and_unmerge);
        tcase_add_test(tc, test_advisor_owns_pages_to_scan);
        tcase_add_test(tc, test_failed_write_then_recovery);
        tcase_add_test(tc, test_outside_change);
        tcase_add_test(tc, test_config_knobs);
        tcase_add_test(tc, test_config_knob_needs_unmerge);
        tcase_add_test(tc, test_replaced_directory_is_reopened);
        suite_add_tcase(suite, tc);
        return suite;
}

int main(void) {
        return unit_run(apply_suite());
}
