/* SPDX-License-Identifier: GPL-2.0-or-later */
/* snapshot.c: one read of memory, guests, KSM and ksmd, on fake /proc and KSM trees. */
#include "fake-tree.h"
#include "ksm-sysfs.h"
#include "snapshot.h"

static FakeTree t;
static GuestMatcher matcher;
static SnapshotSource src;
static long page_kb;

static void setup(void) {
        char err[128];

        src = (SnapshotSource) { .matcher = &matcher, .committed_source = COMMITTED_RSS };
        fake_tree_new_ksm(&t, "snapshot", &src.ksm_fd);
        fake_ksm(&t);
        src.proc_dir = t.proc;
        ck_assert_int_eq(guest_matcher_init(&matcher, DEFAULT_GUEST_COMM, NULL, err, sizeof(err)), 0);
        page_kb = sysconf(_SC_PAGESIZE) / 1024;
}

static void teardown(void) {
        guest_matcher_done(&matcher);
        fake_tree_free_ksm(&t, &src.ksm_fd);
}

START_TEST(test_read) {
        KsmdSampler ks = {};
        SnapshotPart failed;
        Snapshot snap;

        fake_meminfo(&t, 16000000, 1000, 200, 300, 5000);
        fake_process(&t, 100, "qemu-kvm", 1000);
        fake_process(&t, 101, "qemu-system-x86", 500);
        fake_process(&t, 102, "bash", 9999);
        fake_put(&t, "ksm/pages_sharing", "40\n");
        fake_put(&t, "ksm/ksm_zero_pages", "10\n");
        fake_put(&t, "ksm/general_profit", "-8192\n");
        fake_put(&t, "ksm/run", "1\n");

        ck_assert_int_eq(snapshot_read(&src, &ks, &snap, NULL, &failed), 0);
        ck_assert_uint_eq(snap.mem_total, 16000000);
        ck_assert_uint_eq(snap.mem_free + snap.buffers + snap.cached, 1500);
        ck_assert(snap.has_mem_available);
        ck_assert_uint_eq(snap.mem_available, 5000);
        ck_assert_uint_eq(snap.guests, 2);
        ck_assert_uint_eq(snap.committed, 1500 * (uint64_t) page_kb);
        ck_assert(snap.has_counters);
        ck_assert_uint_eq(snap.counters.pages_sharing, 40);
        ck_assert_uint_eq(snap.merged, 50 * (uint64_t) page_kb);
        ck_assert(snap.has_general_profit);
        ck_assert_int_eq(snap.general_profit, -8192);
        ck_assert(snap.knob_known[KNOB_RUN]);
        ck_assert_uint_eq(snap.knob[KNOB_RUN], 1);
        ck_assert_uint_eq(snap.knob[KNOB_PAGES_TO_SCAN], 100);
        ck_assert(!snap.advisor_owns);
        ck_assert(!snap.has_ksmd_cpu); /* no ksmd in this /proc */
        ck_assert_int_eq(ks.pid, -1);
}
END_TEST

START_TEST(test_older_kernel) {
        char path[PATH_MAX];
        KsmdSampler ks = {};
        SnapshotPart failed;
        Snapshot snap;

        fake_meminfo(&t, 1000000, 1000, 0, 0, -1);
        snprintf(path, sizeof(path), "%s/full_scans", t.ksm);
        ck_assert_int_eq(unlink(path), 0);
        snprintf(path, sizeof(path), "%s/sleep_millisecs", t.ksm);
        ck_assert_int_eq(unlink(path), 0);
        fake_put(&t, "ksm/advisor_mode", "none [scan-time]\n");

        ck_assert_int_eq(snapshot_read(&src, &ks, &snap, NULL, &failed), 0);
        ck_assert(!snap.has_mem_available);
        ck_assert(!snap.has_counters);
        ck_assert(!snap.knob_known[KNOB_SLEEP_MILLISECS]);
        ck_assert(snap.knob_known[KNOB_RUN]);
        ck_assert(snap.advisor_owns);
}
END_TEST

START_TEST(test_failures) {
        char path[PATH_MAX];
        KsmdSampler ks = {};
        SnapshotPart failed;
        Snapshot snap;

        ck_assert_int_eq(snapshot_read(&src, &ks, &snap, NULL, &failed), -ENOENT);
        ck_assert_int_eq(failed, SNAPSHOT_MEMINFO);

        fake_put(&t, "proc/meminfo", "garbage\n");
        ck_assert_int_lt(snapshot_read(&src, &ks, &snap, NULL, &failed), 0);
        ck_assert_int_eq(failed, SNAPSHOT_MEMINFO);

        snprintf(path, sizeof(path), "%s/missing", t.root);
        src.proc_dir = path;
        ck_assert_int_eq(snapshot_read(&src, &ks, &snap, NULL, &failed), -ENOENT);
}
END_TEST

/* With the guest list: the same totals as without, from the same pass, and each guest's figures. */
START_TEST(test_guest_list) {
        _cleanup_(guest_list_done) GuestList l = {};
        KsmdSampler ks = {};
        SnapshotPart failed;
        Snapshot plain, listed;

        src.committed_source = COMMITTED_RSS_MINUS_MERGED;
        fake_meminfo(&t, 16000000, 1000, 200, 300, 5000);
        fake_process(&t, 100, "qemu-kvm", 1000);
        fake_process(&t, 101, "qemu-system-x86", 500);
        fake_process(&t, 102, "bash", 9999);
        fake_put(&t, "proc/101/ksm_merging_pages", "200\n");
        fake_put(&t, "proc/101/ksm_stat",
                 "ksm_rmap_items 300\nksm_zero_pages 7\nksm_merging_pages 200\nksm_process_profit 4096\n"
                 "ksm_merge_any no\nksm_mergeable yes\n");

        ck_assert_int_eq(snapshot_read(&src, &ks, &plain, NULL, &failed), 0);
        ck_assert_int_eq(snapshot_read(&src, &ks, &listed, &l, &failed), 0);
        ck_assert_uint_eq(plain.guests, 2);
        ck_assert_uint_eq(plain.committed, (1500 - 200) * (uint64_t) page_kb);
        ck_assert_uint_eq(plain.guest_fallbacks, 1); /* 100 has no ksm_merging_pages */
        ck_assert_uint_eq(listed.guests, plain.guests);
        ck_assert_uint_eq(listed.committed, plain.committed);
        ck_assert_uint_eq(listed.guest_fallbacks, plain.guest_fallbacks);

        ck_assert_uint_eq(l.n, 2);
        guest_list_sort(&l, (uint64_t) sysconf(_SC_PAGESIZE));
        ck_assert_int_eq(l.guests[0].pid, 101);
        ck_assert_str_eq(l.guests[0].name, "qemu-system-x86");
        ck_assert_uint_eq(l.guests[0].rss_bytes, 500 * (uint64_t) sysconf(_SC_PAGESIZE));
        ck_assert(l.guests[0].ksm.has_merging_pages);
        ck_assert_uint_eq(l.guests[0].ksm.merging_pages, 200);
        ck_assert_uint_eq(l.guests[0].ksm.zero_pages, 7);
        ck_assert_int_eq(l.guests[0].mergeable, 1);
        ck_assert_int_eq(l.guests[1].pid, 100);
        ck_assert(!l.guests[1].ksm.has_merging_pages);
}
END_TEST

START_TEST(test_ksmd_cpu) {
        KsmdSampler ks = {};
        unsigned permille = 0;

        fake_ksmd(&t, 37, 100, 100);
        ck_assert(!snapshot_sample_ksmd(t.proc, &ks, &permille)); /* the first sample: nothing to compare */
        ck_assert_int_eq(ks.pid, 37);
        ck_assert(ks.have_sample);
        ck_assert_uint_eq(ks.ns, 200 * (UINT64_C(1000000000) / (uint64_t) sysconf(_SC_CLK_TCK)));
        ck_assert(!ks.precise);

        /* A thousand seconds of CPU in no time at all: capped. */
        fake_ksmd(&t, 37, 100 + 1000 * (uint64_t) sysconf(_SC_CLK_TCK), 100);
        ck_assert(snapshot_sample_ksmd(t.proc, &ks, &permille));
        ck_assert_uint_eq(permille, 1000000);

        /* ksmd gone: looked for again next time. */
        fake_put(&t, "proc/37/stat", "garbage");
        ck_assert(!snapshot_sample_ksmd(t.proc, &ks, &permille));
        ck_assert_int_eq(ks.pid, 0);
        ck_assert(!ks.have_sample);
}
END_TEST

static Suite *snapshot_suite(void) {
        Suite *s = suite_create("snapshot");
        TCase *tc = tcase_create("snapshot");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_read);
        tcase_add_test(tc, test_older_kernel);
        tcase_add_test(tc, test_failures);
        tcase_add_test(tc, test_guest_list);
        tcase_add_test(tc, test_ksmd_cpu);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(snapshot_suite());
}
