/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest list (found as guests_scan() finds guests) and its per-guest metrics, on temporary /proc trees. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "guest-info.h"
#include "guest-metrics.h"

#include "unit.h"

static char root[] = "/tmp/ksmtuned-test-guest-info-XXXXXX";
static uint64_t page;

static void setup(void) {
        unit_tmpdir_make(root);
        page = (uint64_t) sysconf(_SC_PAGESIZE);
}

static void teardown(void) {
        unit_tmpdir_remove(root);
}

static void put(int pid, const char *name, const char *data, size_t len) {
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%d", root, pid);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%d/%s", root, pid, name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
}

/* A process: comm, statm with @rss_pages, a command line (NUL-separated, @len bytes), ksm_stat text or NULL. */
static void proc_add(int pid, const char *comm, uint64_t rss_pages, const char *args, size_t len,
                     const char *ksm_stat) {
        char buf[128];

        snprintf(buf, sizeof(buf), "%s\n", comm);
        put(pid, "comm", buf, strlen(buf));
        snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 " 300 40 0 900 0\n", rss_pages * 3, rss_pages);
        put(pid, "statm", buf, strlen(buf));
        put(pid, "cmdline", args, len);
        if (ksm_stat)
                put(pid, "ksm_stat", ksm_stat, strlen(ksm_stat));
}

#define ARGS(s) s, sizeof(s)

static const GuestInfo *find(const GuestList *l, int pid) {
        for (size_t i = 0; i < l->n; i++)
                if (l->guests[i].pid == pid)
                        return &l->guests[i];
        ck_abort_msg("PID %d not listed", pid);
        return NULL;
}

static void list(const char *comm_re, const char *cmdline_re, unsigned flags, GuestList *ret) {
        GuestMatcher m;
        char err[128];

        ck_assert_int_eq(guest_matcher_init(&m, comm_re, cmdline_re, err, sizeof(err)), 0);
        ck_assert_int_eq(guest_list(root, &m, flags, ret), 0);
        guest_matcher_done(&m);
}

START_TEST(test_list_matches_scan) {
        _cleanup_(guest_list_done) GuestList l = {};
        GuestMatcher m;
        GuestTotals t;
        uint64_t rss = 0;
        char err[128];

        proc_add(1, "systemd", 3000, ARGS("/sbin/init\0"), NULL);
        proc_add(200, "qemu-kvm", 1000, ARGS("qemu-kvm\0"), NULL);
        proc_add(201, "qemu-system-x86", 2500, ARGS("qemu-system-x86_64\0-enable-kvm\0"), NULL);
        proc_add(202, "kvm", 7, ARGS("kvm\0-id\0100\0"), NULL);
        proc_add(203, "bash", 50, ARGS("bash\0"), NULL);

        /* The same matcher finds the same processes, whichever the configuration. */
        for (int c = 0; c < 2; c++) {
                const char *comm = c == 0 ? DEFAULT_GUEST_COMM : NULL;
                const char *cmdline = c == 0 ? NULL : "^qemu-system.*-enable-kvm";

                ck_assert_int_eq(guest_matcher_init(&m, comm, cmdline, err, sizeof(err)), 0);
                ck_assert_int_eq(guests_scan(root, &m, COMMITTED_RSS, &t), 0);
                ck_assert_int_eq(guest_list(root, &m, 0, &l), 0);
                guest_matcher_done(&m);
                ck_assert_uint_eq(l.n, t.count);
                rss = 0;
                for (size_t i = 0; i < l.n; i++)
                        rss += l.guests[i].rss_bytes;
                ck_assert_uint_eq(rss, t.rss_kb * 1024);
                ck_assert_uint_eq(l.n, c == 0 ? 3 : 1);
                guest_list_done(&l);
        }
}
END_TEST

START_TEST(test_list_figures_and_reasons) {
        _cleanup_(guest_list_done) GuestList l = {};
        _cleanup_free_ char *full = unit_fixture("ksm-stat", "full.ksm_stat", NULL);
        _cleanup_free_ char *notm = unit_fixture("ksm-stat", "not-mergeable.ksm_stat", NULL);
        _cleanup_free_ char *rmap = unit_fixture("ksm-stat", "rmap-only.ksm_stat", NULL);
        _cleanup_free_ char *smaps_yes = unit_fixture("ksm-stat", "mergeable.smaps", NULL);
        const GuestInfo *g;

        proc_add(300, "qemu-system-x86", 20000, ARGS("qemu\0-name\0guest=web,debug-threads=on\0"), full);
        proc_add(301, "qemu-system-x86", 20000,
                 ARGS("qemu\0-name\0guest=db,debug-threads=on\0-machine\0pc,mem-merge=off\0"), notm);
        proc_add(302, "qemu-system-x86", 100, ARGS("qemu\0-machine\0pc,mem-merge=off\0"), notm);
        proc_add(303, "qemu-kvm", 100, ARGS("qemu-kvm\0"), notm);
        proc_add(304, "qemu-kvm", 100, ARGS("qemu-kvm\0"), NULL); /* before 5.19: nothing */
        proc_add(305, "qemu-kvm", 100, ARGS("qemu-kvm\0"), rmap); /* 6.1: no mergeable line */
        put(305, "ksm_merging_pages", "0\n", 2);
        put(305, "smaps", smaps_yes, strlen(smaps_yes));
        proc_add(306, "qemu-kvm", 100, ARGS("qemu-kvm\0"), NULL); /* 5.19: merged pages prove it */
        put(306, "ksm_merging_pages", "7\n", 2);

        list(DEFAULT_GUEST_COMM, NULL, 0, &l);
        ck_assert_uint_eq(l.n, 7);

        g = find(&l, 300);
        ck_assert_str_eq(g->name, "web");
        ck_assert(g->named);
        ck_assert_uint_eq(g->rss_bytes, 20000 * page);
        ck_assert_int_eq(g->mergeable, 1);
        ck_assert_uint_eq(g->ksm.merging_pages, 16384);

        g = find(&l, 301);
        ck_assert_int_eq(g->mergeable, 0);
        ck_assert_int_eq(g->reason, KSM_UNMERGEABLE_NOSHAREPAGES);
        g = find(&l, 302);
        ck_assert_str_eq(g->name, "qemu-system-x86");
        ck_assert(!g->named);
        ck_assert_int_eq(g->reason, KSM_UNMERGEABLE_MEM_MERGE_OFF);
        g = find(&l, 303);
        ck_assert_int_eq(g->mergeable, 0);
        ck_assert_int_eq(g->reason, KSM_UNMERGEABLE_NOT_MARKED);

        g = find(&l, 304);
        ck_assert_int_eq(g->ksm_error, -ENOENT);
        ck_assert_int_eq(g->mergeable, -1);
        ck_assert(!g->ksm.has_merging_pages && !g->ksm.has_rmap_items);

        /* Without GUEST_LIST_SMAPS, a kernel without ksm_mergeable leaves it unknown... */
        g = find(&l, 305);
        ck_assert_int_eq(g->mergeable, -1);
        ck_assert(g->ksm.has_merging_pages && g->ksm.has_rmap_items);
        g = find(&l, 306);
        ck_assert_int_eq(g->mergeable, 1);
        ck_assert_uint_eq(g->ksm.merging_pages, 7);
        guest_list_done(&l);

        /* ... and with it, smaps' mg flag tells. */
        list(DEFAULT_GUEST_COMM, NULL, GUEST_LIST_SMAPS, &l);
        ck_assert_int_eq(find(&l, 305)->mergeable, 1);
        ck_assert_int_eq(find(&l, 304)->mergeable, -1); /* no smaps either */
}
END_TEST

START_TEST(test_sort) {
        _cleanup_(guest_list_done) GuestList l = {};

        proc_add(400, "qemu-kvm", 10, ARGS("qemu-kvm\0"), "ksm_merging_pages 5\nksm_zero_pages 1\n");
        proc_add(401, "qemu-kvm", 10, ARGS("qemu-kvm\0"), "ksm_merging_pages 50\n");
        proc_add(402, "qemu-kvm", 99, ARGS("qemu-kvm\0"), "ksm_merging_pages 0\n");
        proc_add(403, "qemu-kvm", 10, ARGS("qemu-kvm\0"), "ksm_merging_pages 0\nksm_zero_pages 6\n");
        proc_add(404, "qemu-kvm", 10, ARGS("qemu-kvm\0"), "ksm_merging_pages 0\n");
        proc_add(399, "qemu-kvm", 10, ARGS("qemu-kvm\0"), "ksm_merging_pages 0\n");
        list(DEFAULT_GUEST_COMM, NULL, 0, &l);
        guest_list_sort(&l, page);
        ck_assert_uint_eq(l.n, 6);
        /* Saved (merged + zero pages) first, then resident memory, then PID. */
        ck_assert_int_eq(l.guests[0].pid, 401);
        ck_assert_int_eq(l.guests[1].pid, 400);
        ck_assert_int_eq(l.guests[2].pid, 403);
        ck_assert_int_eq(l.guests[3].pid, 402);
        ck_assert_int_eq(l.guests[4].pid, 399);
        ck_assert_int_eq(l.guests[5].pid, 404);
}
END_TEST

/* A list built by hand, for the pure formatter. */
static GuestInfo info(int pid, const char *name, uint64_t rss, int64_t merged, int mergeable) {
        GuestInfo g = { .pid = pid, .name = (char *) name, .rss_bytes = rss, .mergeable = mergeable };

        if (merged >= 0) {
                g.ksm.has_merging_pages = g.ksm.has_zero_pages = g.ksm.has_profit = true;
                g.ksm.merging_pages = (uint64_t) merged;
                g.ksm.zero_pages = 1;
                g.ksm.profit = merged * 4096 - 640;
        }
        return g;
}

START_TEST(test_metrics_format) {
        GuestInfo g[] = {
                info(10, "web", 1000000, 100, 1),
                info(11, "db \"prod\"\\x\nnext", 2000000, 0, 0),
                info(12, "web", 500, 20, 1), /* the same name: added up, no PID label */
                info(13, "qemu-kvm", 700, -1, -1),
        };
        GuestList l = { .guests = g, .n = ELEMENTSOF(g) };
        _cleanup_free_ char *text = NULL;

        g[1].reason = KSM_UNMERGEABLE_NOSHAREPAGES;
        ck_assert_int_eq(guest_metrics_format(&l, 4096, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "# TYPE ksmtuned_guest_resident_bytes gauge\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_processes{guest=\"web\"} 2\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_resident_bytes{guest=\"web\"} 1000500\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_merged_bytes{guest=\"web\"} 491520\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_zero_page_bytes{guest=\"web\"} 8192\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_profit_bytes{guest=\"web\"} 490240\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_mergeable{guest=\"web\"} 1\n"));
        ck_assert_ptr_nonnull(
                strstr(text, "ksmtuned_guest_profit_bytes{guest=\"db \\\"prod\\\"\\\\x\\nnext\"} -640\n"));
        ck_assert_ptr_nonnull(strstr(
                text, "ksmtuned_guest_mergeable{guest=\"db \\\"prod\\\"\\\\x\\nnext\",reason=\"nosharepages\"} 0\n"));
        /* The kernel's figures it lacks are left out, never 0. */
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guest_resident_bytes{guest=\"qemu-kvm\"} 700\n"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_merged_bytes{guest=\"qemu-kvm\"}"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_mergeable{guest=\"qemu-kvm\"}"));
        ck_assert_ptr_null(strstr(text, "pid"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guests_unlisted 0\n"));
}
END_TEST

START_TEST(test_metrics_no_kernel_figures) {
        GuestInfo g[] = { info(13, "qemu-kvm", 700, -1, -1) };
        GuestList l = { .guests = g, .n = 1 }, empty = {};
        _cleanup_free_ char *text = NULL, *none = NULL;

        ck_assert_int_eq(guest_metrics_format(&l, 4096, &text), 0);
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_merged_bytes"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_zero_page_bytes"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_profit_bytes"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_guest_mergeable"));
        ck_assert_int_eq(guest_metrics_format(&empty, 4096, &none), 0);
        ck_assert_str_eq(
                none, "# HELP ksmtuned_guest_processes Guest processes of this name (libvirt's domain name, else the "
                      "process name).\n# TYPE ksmtuned_guest_processes gauge\n"
                      "# HELP ksmtuned_guest_resident_bytes Resident memory of the guest's processes (RSS).\n"
                      "# TYPE ksmtuned_guest_resident_bytes gauge\n"
                      "# HELP ksmtuned_guests_unlisted Guest processes left out of the per-guest series (more "
                      "than 256 names).\n# TYPE ksmtuned_guests_unlisted gauge\nksmtuned_guests_unlisted 0\n");
}
END_TEST

/* More guest names than the bound: the series stay bounded, the rest are counted. */
START_TEST(test_metrics_bounded) {
        size_t n = GUEST_METRICS_MAX + 44;
        _cleanup_free_ GuestInfo *g = calloc(n, sizeof(GuestInfo));
        _cleanup_free_ char *names = calloc(n, 16), *text = NULL;
        GuestList l = { .guests = g, .n = n };
        size_t samples = 0;

        for (size_t i = 0; i < n; i++) {
                snprintf(names + i * 16, 16, "g%zu", i);
                g[i] = info((int) i + 1, names + i * 16, 100, (int64_t) (n - i), 1);
        }
        ck_assert_int_eq(guest_metrics_format(&l, 4096, &text), 0);
        for (const char *p = text; (p = strstr(p, "{guest=\"")); p++)
                samples++;
        ck_assert_uint_eq(samples, GUEST_METRICS_MAX * GUEST_METRICS_SERIES);
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_guests_unlisted 44\n"));
        ck_assert_ptr_nonnull(strstr(text, "{guest=\"g255\"}"));
        ck_assert_ptr_null(strstr(text, "{guest=\"g256\"}"));
}
END_TEST

static Suite *guest_info_suite(void) {
        Suite *s = suite_create("guest-info");
        TCase *tc = tcase_create("list");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_list_matches_scan);
        tcase_add_test(tc, test_list_figures_and_reasons);
        tcase_add_test(tc, test_sort);
        suite_add_tcase(s, tc);

        tc = tcase_create("metrics");
        tcase_add_test(tc, test_metrics_format);
        tcase_add_test(tc, test_metrics_no_kernel_figures);
        tcase_add_test(tc, test_metrics_bounded);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(guest_info_suite());
}
