/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest detection and RSS accounting over temporary trees laid out like /proc. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "guests.h"

#include "unit.h"

static char root[] = "/tmp/ksmtuned-test-guests-XXXXXX";
static long page_kb;

static void put(const char *rel, const char *data, size_t len) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
}

/* A process directory; comm or statm NULL leaves that file out (a process that exits mid-scan). */
static void proc_add(int pid, const char *comm, long rss_pages, const char *cmdline, size_t cmdline_len) {
        char rel[64], buf[128];

        snprintf(rel, sizeof(rel), "%s/%d", root, pid);
        ck_assert_int_eq(mkdir(rel, 0755), 0);
        if (comm) {
                snprintf(rel, sizeof(rel), "%d/comm", pid);
                snprintf(buf, sizeof(buf), "%s\n", comm);
                put(rel, buf, strlen(buf));
        }
        if (rss_pages >= 0) {
                snprintf(rel, sizeof(rel), "%d/statm", pid);
                snprintf(buf, sizeof(buf), "%ld %ld 300 40 0 900 0\n", rss_pages * 4, rss_pages);
                put(rel, buf, strlen(buf));
        }
        snprintf(rel, sizeof(rel), "%d/cmdline", pid);
        put(rel, cmdline ? cmdline : "", cmdline ? cmdline_len : 0);
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(root));
        page_kb = sysconf(_SC_PAGESIZE) / 1024;
}

static void teardown(void) {
        unit_tmpdir_remove(root);
}

/* Which names count as guests by default: Fedora/RHEL's expression, plus Proxmox's kvm. */
static const struct {
        const char *comm;
        bool guest;
} comm_cases[] = {
        { "qemu-kvm", true },
        { "qemu-system-x86", true },
        { "qemu-system-aar", true },
        { "qemu:g", true },
        { "qemu:guest-123456", false }, /* 12 characters after "qemu:": beyond {1,11} */
        { "qemu:guest-12345", true },   /* 11 */
        { "qemu:", false },
        { "kvm", true },
        { "qemu", false },
        { "qemu-img", false },
        { "qemu-system-", false },
        { "kvm-pit/1234", false },
        { "bash", false },
        { "xqemu-kvm", false },
};

START_TEST(test_default_names) {
        GuestMatcher m;
        GuestTotals t;
        char err[128];

        proc_add(100, comm_cases[_i].comm, 1000, NULL, 0);
        ck_assert_int_eq(guest_matcher_init(&m, DEFAULT_GUEST_COMM, NULL, err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_msg(t.count == (comm_cases[_i].guest ? 1u : 0u), "%s: count %u", comm_cases[_i].comm, t.count);
        ck_assert_uint_eq(t.rss_kb, comm_cases[_i].guest ? 1000 * (uint64_t) page_kb : 0);
        guest_matcher_done(&m);
}
END_TEST

START_TEST(test_sum_and_skips) {
        static const char debian[] = "qemu-system-x86_64\0-enable-kvm\0-m\0001024\0";
        GuestMatcher m;
        GuestTotals t;
        char err[128];

        proc_add(1, "systemd", 3000, "/sbin/init", 11);
        proc_add(200, "qemu-kvm", 1000, NULL, 0);
        proc_add(201, "qemu-system-x86", 2500, debian, sizeof(debian));
        proc_add(202, "kvm", 7, NULL, 0);
        proc_add(203, "qemu-kvm", -1, NULL, 0); /* exited between comm and statm */
        proc_add(204, NULL, 5000, NULL, 0);     /* exited before comm */
        ck_assert_int_eq(mkdir(strcat(strcpy(err, root), "/self"), 0755), 0);
        put("sys", "x", 1);

        ck_assert_int_eq(guest_matcher_init(&m, DEFAULT_GUEST_COMM, NULL, err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_uint_eq(t.count, 3);
        ck_assert_uint_eq(t.rss_kb, (1000 + 2500 + 7) * (uint64_t) page_kb);
        guest_matcher_done(&m);
}
END_TEST

/* Debian's original matched the command line: `pgrep -f '^qemu-system.*-enable-kvm'`. */
START_TEST(test_debian_cmdline) {
        static const char kvm[] = "qemu-system-x86_64\0-machine\0pc\0-enable-kvm\0";
        static const char tcg[] = "qemu-system-x86_64\0-machine\0pc\0";
        static const char wrapped[] = "/usr/bin/qemu-system-x86_64\0-enable-kvm\0";
        GuestMatcher m;
        GuestTotals t;
        char err[128];

        proc_add(300, "qemu-system-x86", 100, kvm, sizeof(kvm));
        proc_add(301, "qemu-system-x86", 200, tcg, sizeof(tcg));
        proc_add(302, "qemu-system-x86", 400, wrapped, sizeof(wrapped));
        proc_add(303, "kworker/0:1", 800, NULL, 0);

        ck_assert_int_eq(guest_matcher_init(&m, "", "^qemu-system.*-enable-kvm", err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_uint_eq(t.count, 1);
        ck_assert_uint_eq(t.rss_kb, 100 * (uint64_t) page_kb);
        guest_matcher_done(&m);

        /* Both expressions: a process counts once when either matches. */
        ck_assert_int_eq(guest_matcher_init(&m, "^kworker", "^qemu-system.*-enable-kvm", err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_uint_eq(t.count, 2);
        ck_assert_uint_eq(t.rss_kb, 900 * (uint64_t) page_kb);
        guest_matcher_done(&m);
}
END_TEST

START_TEST(test_errors) {
        GuestMatcher m;
        GuestTotals t = { .count = 42 };
        char err[128] = "";

        ck_assert_int_eq(guest_matcher_init(&m, "qemu(", NULL, err, sizeof(err)), -EINVAL);
        ck_assert_str_ne(err, "");
        ck_assert_int_eq(guest_matcher_init(&m, NULL, "[z-a]", err, sizeof(err)), -EINVAL);

        ck_assert_int_eq(guest_matcher_init(&m, DEFAULT_GUEST_COMM, NULL, err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan("/nonexistent/ksmtuned-proc", &m, COMMITTED_RSS, &t), -ENOENT);
        ck_assert_uint_eq(t.count, 42); /* untouched on failure */
        guest_matcher_done(&m);

        /* Nothing to match: no process counts, and nothing is read. */
        proc_add(400, "qemu-kvm", 10, NULL, 0);
        ck_assert_int_eq(guest_matcher_init(&m, "", "", err, sizeof(err)), 0);
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_uint_eq(t.count, 0);
        guest_matcher_done(&m);
}
END_TEST

static void put_pid(int pid, const char *name, const char *text) {
        char rel[64];

        snprintf(rel, sizeof(rel), "%d/%s", pid, name);
        put(rel, text, strlen(text));
}

/* KSM_COMMITTED=pss and rss-minus-merged: each guest's own figure, and RSS where it is unreadable. */
START_TEST(test_committed_sources) {
        GuestMatcher m;
        GuestTotals t;
        char err[128];

        proc_add(500, "qemu-kvm", 1000, NULL, 0);
        put_pid(500, "smaps_rollup",
                "5555-7777 ---p 00000000 00:00 0 [rollup]\nRss: 4000 kB\nPss:   1500 kB\n"
                "Pss_Dirty: 900 kB\n");
        put_pid(500, "ksm_merging_pages", "200\n");
        proc_add(501, "qemu-kvm", 2000, NULL, 0);
        put_pid(501, "smaps_rollup",
                "5555-7777 ---p 00000000 00:00 0 [rollup]\nRss: 8000 kB\nPss_Dirty: 3 kB\n"
                "Pss: 6000 kB\n");
        /* An older kernel: ksm_stat without the ksm_merging_pages file. */
        put_pid(501, "ksm_stat", "ksm_rmap_items 10\nksm_zero_pages 0\nksm_merging_pages 2500\n");
        proc_add(502, "qemu-kvm", 300, NULL, 0); /* neither file readable: counted by its RSS */
        ck_assert_int_eq(guest_matcher_init(&m, DEFAULT_GUEST_COMM, NULL, err, sizeof(err)), 0);

        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
        ck_assert_uint_eq(t.rss_kb, 3300 * (uint64_t) page_kb);
        ck_assert_uint_eq(t.fallbacks, 0);

        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_PSS, &t), 0);
        ck_assert_uint_eq(t.count, 3);
        ck_assert_uint_eq(t.rss_kb, 1500 + 6000 + 300 * (uint64_t) page_kb);
        ck_assert_uint_eq(t.fallbacks, 1);

        /* 500: 1000 - 200 pages; 501: 2000 - 2500 pages, never below 0; 502: its RSS. */
        ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS_MINUS_MERGED, &t), 0);
        ck_assert_uint_eq(t.rss_kb, (800 + 0 + 300) * (uint64_t) page_kb);
        ck_assert_uint_eq(t.merged_kb, (200 + 2500) * (uint64_t) page_kb);
        ck_assert_uint_eq(t.fallbacks, 1);
        guest_matcher_done(&m);
}
END_TEST

static const struct {
        const char *text;
        int r;
        uint64_t kb;
} pss_cases[] = {
        { "Rss: 10 kB\nPss: 7 kB\n", 0, 7 },
        { "Pss_Dirty: 3 kB\nPss: 7 kB\n", 0, 7 },
        { "Pss:7 kB", 0, 7 },
        { "Pss_Anon: 7 kB\n", -EBADMSG, 0 },
        { "Pss: kB\n", -EBADMSG, 0 },
        { "Pss: 7x kB\n", -EBADMSG, 0 },
        { "Pss: 99999999999999999999999 kB\n", -EBADMSG, 0 },
        { "", -EBADMSG, 0 },
};

START_TEST(test_pss_parse) {
        uint64_t kb = 777;
        int r = smaps_rollup_parse_pss(pss_cases[_i].text, &kb);

        ck_assert_msg(r == pss_cases[_i].r, "\"%s\": %d", pss_cases[_i].text, r);
        ck_assert_uint_eq(kb, r == 0 ? pss_cases[_i].kb : 777);
}
END_TEST

static const struct {
        const char *text;
        int r;
        uint64_t pages;
} merging_cases[] = {
        { "42\n", 0, 42 },
        { "0", 0, 0 },
        { "ksm_rmap_items 1\nksm_merging_pages 9\nksm_process_profit 3\n", 0, 9 },
        { "ksm_rmap_items 1\n", -EBADMSG, 0 },
        { "-1\n", -EBADMSG, 0 },
        { "", -EBADMSG, 0 },
};

START_TEST(test_merging_parse) {
        uint64_t v = 777;
        int r = ksm_stat_parse_merging(merging_cases[_i].text, &v);

        ck_assert_msg(r == merging_cases[_i].r, "\"%s\": %d", merging_cases[_i].text, r);
        ck_assert_uint_eq(v, r == 0 ? merging_cases[_i].pages : 777);
}
END_TEST

static const struct {
        const char *text;
        int r;
        uint64_t pages;
} statm_cases[] = {
        { "4000 1000 300 40 0 900 0\n", 0, 1000 },
        { "4000 0 0 0 0 0 0\n", 0, 0 },
        { "4000 1000", 0, 1000 },
        { "4000 1000\n", 0, 1000 },
        { "", -EBADMSG, 0 },
        { "4000", -EBADMSG, 0 },
        { "4000 ", -EBADMSG, 0 },
        { "4000 x", -EBADMSG, 0 },
        { "4000 12x 0", -EBADMSG, 0 },
        { "-1 1000", -EBADMSG, 0 },
        { "1 99999999999999999999999", -EBADMSG, 0 },
};

START_TEST(test_statm) {
        uint64_t kb = 777;
        int r = statm_parse_rss_kb(statm_cases[_i].text, 4096, &kb);

        ck_assert_msg(r == statm_cases[_i].r, "\"%s\": %d", statm_cases[_i].text, r);
        ck_assert_uint_eq(kb, r == 0 ? statm_cases[_i].pages * 4 : 777);
}
END_TEST

int main(void) {
        Suite *s = suite_create("guests");
        TCase *tc = tcase_create("scan");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_loop_test(tc, test_default_names, 0, sizeof(comm_cases) / sizeof(comm_cases[0]));
        tcase_add_test(tc, test_sum_and_skips);
        tcase_add_test(tc, test_debian_cmdline);
        tcase_add_test(tc, test_errors);
        tcase_add_loop_test(tc, test_statm, 0, sizeof(statm_cases) / sizeof(statm_cases[0]));
        tcase_add_test(tc, test_committed_sources);
        tcase_add_loop_test(tc, test_pss_parse, 0, sizeof(pss_cases) / sizeof(pss_cases[0]));
        tcase_add_loop_test(tc, test_merging_parse, 0, sizeof(merging_cases) / sizeof(merging_cases[0]));
        suite_add_tcase(s, tc);

        return unit_run(s);
}
