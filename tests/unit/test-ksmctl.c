/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of ksmctl's operations (start, stop, unmerge, status) against temporary KSM directories. */
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "ksm-sysfs.h"
#include "ksmctl-guests.h"
#include "ksmctl-ops.h"
#include "util.h"

#include "fake-tree.h"

static FakeTree t;
static int dfd = -1;

static void setup(void) {
        fake_tree_new_ksm(&t, "ksmctl", &dfd);
}

static void teardown(void) {
        fake_tree_free_ksm(&t, &dfd);
}

static void put(const char *name, const char *content) {
        fake_knob(&t, name, content);
}

static uint64_t get(const char *name) {
        uint64_t v;

        ck_assert_int_eq(ksm_read_u64(dfd, name, &v), 0);
        return v;
}

/* The knobs of the first KSM kernel, 2.6.32, with its defaults. */
static void make_old_kernel(void) {
        put("run", "0\n");
        put("pages_to_scan", "100\n");
        put("sleep_millisecs", "20\n");
        put("pages_shared", "0\n");
        put("pages_sharing", "0\n");
        put("pages_unshared", "0\n");
        put("pages_volatile", "0\n");
        put("full_scans", "0\n");
        put("max_kernel_pages", "2000\n");
}

/* Every knob of Linux 6.18, as this project's machine shows them. */
static void make_new_kernel(void) {
        static const char *const knobs[][2] = {
                { "run", "1" },
                { "pages_to_scan", "100" },
                { "sleep_millisecs", "20" },
                { "pages_shared", "1500" },
                { "pages_sharing", "32000" },
                { "pages_unshared", "700" },
                { "pages_volatile", "12" },
                { "full_scans", "9" },
                { "max_page_sharing", "256" },
                { "merge_across_nodes", "1" },
                { "use_zero_pages", "0" },
                { "stable_node_chains", "3" },
                { "stable_node_dups", "4" },
                { "stable_node_chains_prune_millisecs", "2000" },
                { "pages_scanned", "123456" },
                { "pages_skipped", "789" },
                { "ksm_zero_pages", "5" },
                { "general_profit", "-8192" },
                { "smart_scan", "1" },
                { "advisor_mode", "none [scan-time]" },
                { "advisor_max_cpu", "70" },
                { "advisor_min_pages_to_scan", "500" },
                { "advisor_max_pages_to_scan", "30000" },
                { "advisor_target_scan_time", "200" },
        };
        char buf[64];

        for (size_t i = 0; i < ELEMENTSOF(knobs); i++) {
                snprintf(buf, sizeof(buf), "%s\n", knobs[i][1]);
                put(knobs[i][0], buf);
        }
}

START_TEST(test_max_kernel_pages) {
        static const struct {
                const char *env; /* NULL: unset */
                int r;           /* 1: from the environment, 0: the default, half of memory */
                uint64_t pages;
        } cases[] = {
                { NULL, 0, 500 },
                { "", 0, 500 },
                { "0", 1, 0 },
                { "-0", 1, 0 },
                { "123", 1, 123 },
                { "+5", 1, 5 },
                { "0x10", 1, 16 },
                { "0X1f", 1, 31 },
                { "010", 1, 8 },
                { " 7", 1, 7 },
                { "\t\n12", 1, 12 },
                { "9223372036854775806", 1, 9223372036854775806ULL },
                { "-5", 0, 500 },
                { "12abc", 0, 500 },
                { "7 ", 0, 500 },
                { " ", 0, 500 },
                { "abc", 0, 500 },
                { "0x", 0, 500 },
                { "08", 0, 500 },
                { "1e3", 0, 500 },
                { "9223372036854775807", 0, 500 }, /* LLONG_MAX: strtoll's answer to an overflow */
                { "99999999999999999999", 0, 500 },
                { "-99999999999999999999", 0, 500 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 42;
                int r = ksmctl_max_kernel_pages(cases[i].env, 1001, &v);

                ck_assert_msg(r == cases[i].r && v == cases[i].pages, "'%s': r=%d pages=%" PRIu64,
                              cases[i].env ?: "(unset)", r, v);
        }
}
END_TEST

START_TEST(test_start_new_kernel) {
        KsmctlReport rep = {};

        make_new_kernel();
        put("run", "0\n");
        ck_assert_int_eq(ksmctl_start(dfd, "123", 1000, &rep), 0);
        ck_assert_uint_eq(get("run"), 1);
        ck_assert(!ksm_has(dfd, "max_kernel_pages")); /* never created */
        ck_assert(!rep.limited);
        ck_assert_str_eq(rep.knob, "run");
        ck_assert(rep.write);
        ck_assert_uint_eq(rep.value, 1);
}
END_TEST

START_TEST(test_start_old_kernel) {
        static const struct {
                const char *env;
                uint64_t limit;
                bool from_env;
        } cases[] = {
                { NULL, 500, false }, { "", 500, false },   { "0", 0, true },        { "0x10", 16, true },
                { "010", 8, true },   { "-5", 500, false }, { "12abc", 500, false },
        };

        make_old_kernel();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                KsmctlReport rep = {};

                put("run", "0\n");
                put("max_kernel_pages", "2000\n");
                ck_assert_int_eq(ksmctl_start(dfd, cases[i].env, 1000, &rep), 0);
                ck_assert_uint_eq(get("max_kernel_pages"), cases[i].limit);
                ck_assert_uint_eq(get("run"), 1);
                ck_assert(rep.limited);
                ck_assert_uint_eq(rep.max_kernel_pages, cases[i].limit);
                ck_assert(rep.limit_from_env == cases[i].from_env);
        }
}
END_TEST

START_TEST(test_start_limit_unwritable) {
        KsmctlReport rep = {};

        /* Without the limit asked for, KSM is not started. */
        make_old_kernel();
        ck_assert_int_eq(unlinkat(dfd, "max_kernel_pages", 0), 0);
        ck_assert_int_eq(mkdirat(dfd, "max_kernel_pages", 0755), 0);
        ck_assert_int_eq(ksmctl_start(dfd, "77", 1000, &rep), -EISDIR);
        ck_assert_str_eq(rep.knob, "max_kernel_pages");
        ck_assert(rep.write);
        ck_assert_uint_eq(rep.value, 77);
        ck_assert(!rep.limited);
        ck_assert_uint_eq(get("run"), 0);
}
END_TEST

START_TEST(test_start_run_missing) {
        KsmctlReport rep = {};

        ck_assert_int_eq(ksmctl_start(dfd, NULL, 1000, &rep), -ENOENT);
        ck_assert_str_eq(rep.knob, "run");
        ck_assert(rep.write);
        ck_assert_uint_eq(rep.value, 1);
        ck_assert(!ksm_has(dfd, "run"));
}
END_TEST

START_TEST(test_start_run_refused) {
        KsmctlReport rep = {};

        make_new_kernel();
        ck_assert_int_eq(unlinkat(dfd, "run", 0), 0);
        ck_assert_int_eq(symlinkat("/dev/full", dfd, "run"), 0);
        ck_assert_int_eq(ksmctl_start(dfd, NULL, 1000, &rep), -ENOSPC);
        ck_assert_str_eq(rep.knob, "run");
}
END_TEST

START_TEST(test_stop) {
        KsmctlReport rep = {};

        make_new_kernel();
        ck_assert_int_eq(ksmctl_stop(dfd, &rep), 0);
        ck_assert_uint_eq(get("run"), 0);
        ck_assert_uint_eq(get("pages_sharing"), 32000); /* merged pages stay merged */
        ck_assert_str_eq(rep.knob, "run");
        ck_assert_uint_eq(rep.value, 0);

        ck_assert_int_eq(unlinkat(dfd, "run", 0), 0);
        ck_assert_int_eq(mkdirat(dfd, "run", 0755), 0);
        ck_assert_int_eq(ksmctl_stop(dfd, &rep), -EISDIR);
        ck_assert_str_eq(rep.knob, "run");
        ck_assert(rep.write);
}
END_TEST

START_TEST(test_mem_available) {
        MemInfo with = { .mem_total = 1000,
                         .mem_free = 100,
                         .mem_available = 600,
                         .buffers = 10,
                         .cached = 200,
                         .has_mem_available = true };
        MemInfo without = { .mem_total = 1000, .mem_free = 100, .buffers = 10, .cached = 200 };
        MemInfo huge = { .mem_total = 1, .mem_free = UINT64_MAX, .buffers = 1, .cached = 1 };

        ck_assert_uint_eq(ksmctl_mem_available_bytes(&with), 600 * 1024);
        ck_assert_uint_eq(ksmctl_mem_available_bytes(&without), 310 * 1024);
        ck_assert_uint_eq(ksmctl_mem_available_bytes(&huge), UINT64_MAX);
}
END_TEST

START_TEST(test_unmerge_refused) {
        /* 1000 pages of 4 KiB need 4000 kB; 3999 kB available is not enough. */
        MemInfo mi = { .mem_total = 100000, .mem_free = 10, .mem_available = 3999, .has_mem_available = true };
        KsmctlReport rep = {};

        make_old_kernel();
        put("run", "1\n");
        put("pages_sharing", "1000\n");
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), -ENOMEM);
        ck_assert(rep.refused);
        ck_assert_uint_eq(rep.needed_bytes, 4096000);
        ck_assert_uint_eq(rep.available_bytes, 3999 * 1024);
        ck_assert_uint_eq(get("run"), 1);

        /* Exactly enough is enough. */
        rep = (KsmctlReport) {};
        mi.mem_available = 4000;
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), 0);
        ck_assert(!rep.refused);
        ck_assert_uint_eq(get("run"), 2);
}
END_TEST

START_TEST(test_unmerge_old_meminfo) {
        /* Without MemAvailable: MemFree + Buffers + Cached = 4000 kB. */
        MemInfo mi = { .mem_total = 100000, .mem_free = 1000, .buffers = 1000, .cached = 1999 };
        KsmctlReport rep = {};

        make_old_kernel();
        put("run", "1\n");
        put("pages_sharing", "1000\n");
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), -ENOMEM);
        ck_assert_uint_eq(rep.available_bytes, 3999 * 1024);
        mi.cached = 2000;
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), 0);
        ck_assert_uint_eq(get("run"), 2);
}
END_TEST

START_TEST(test_unmerge_zero_pages) {
        /* Pages merged with the zero page need copies too: 32000 + 5 pages. */
        MemInfo mi = { .mem_total = 1000000, .mem_available = 128000, .has_mem_available = true };
        KsmctlReport rep = {};

        make_new_kernel();
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), -ENOMEM);
        ck_assert_uint_eq(rep.needed_bytes, 32005ULL * 4096);
        ck_assert_uint_eq(get("run"), 1);
        mi.mem_available = 128020;
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), 0);
        ck_assert_uint_eq(get("run"), 2);
}
END_TEST

START_TEST(test_unmerge_forced) {
        KsmctlReport rep = {};

        make_new_kernel();
        ck_assert_int_eq(ksmctl_unmerge(dfd, NULL, 4096, &rep), 0);
        ck_assert(!rep.refused);
        ck_assert_uint_eq(get("run"), 2);
        ck_assert_str_eq(rep.knob, "run");
        ck_assert_uint_eq(rep.value, 2);
}
END_TEST

START_TEST(test_unmerge_errors) {
        MemInfo mi = { .mem_total = 1000000, .mem_available = 1000000, .has_mem_available = true };
        KsmctlReport rep = {};

        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), -ENOENT);
        ck_assert_str_eq(rep.knob, "pages_sharing");
        ck_assert(!rep.write);

        put("pages_sharing", "lots\n");
        ck_assert_int_eq(ksmctl_unmerge(dfd, NULL, 4096, &rep), -EBADMSG);
        ck_assert_str_eq(rep.knob, "pages_sharing");

        put("pages_sharing", "0\n");
        ck_assert_int_eq(ksmctl_unmerge(dfd, &mi, 4096, &rep), -ENOENT);
        ck_assert_str_eq(rep.knob, "run");
        ck_assert(rep.write);
        ck_assert(!rep.refused);
}
END_TEST

START_TEST(test_status_new_kernel) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        KsmctlReport rep = {};
        uint64_t rate;

        make_new_kernel();
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        ck_assert_uint_eq(s.run, 1);
        ck_assert_uint_eq(s.pages_to_scan, 100);
        ck_assert_uint_eq(s.sleep_millisecs, 20);
        ck_assert_uint_eq(s.pages_shared, 1500);
        ck_assert_uint_eq(s.pages_sharing, 32000);
        ck_assert_uint_eq(s.pages_unshared, 700);
        ck_assert_uint_eq(s.pages_volatile, 12);
        ck_assert_uint_eq(s.full_scans, 9);
        for (KsmctlKnob k = 0; k < _KSMCTL_KNOB_MAX; k++)
                ck_assert(ksmctl_status_has(&s, k) == (k != KSMCTL_KNOB_MAX_KERNEL_PAGES));
        ck_assert(!ksmctl_status_has(&s, _KSMCTL_KNOB_MAX));
        ck_assert_uint_eq(s.max_page_sharing, 256);
        ck_assert_uint_eq(s.merge_across_nodes, 1);
        ck_assert_uint_eq(s.use_zero_pages, 0);
        ck_assert_uint_eq(s.stable_node_chains, 3);
        ck_assert_uint_eq(s.stable_node_dups, 4);
        ck_assert_uint_eq(s.pages_scanned, 123456);
        ck_assert_uint_eq(s.pages_skipped, 789);
        ck_assert_uint_eq(s.ksm_zero_pages, 5);
        ck_assert_int_eq(s.general_profit, -8192);
        ck_assert_uint_eq(s.smart_scan, 1);
        ck_assert_str_eq(s.advisor_mode, "scan-time");
        ck_assert_uint_eq(s.advisor_max_cpu, 70);
        ck_assert_uint_eq(s.advisor_min_pages_to_scan, 500);
        ck_assert_uint_eq(s.advisor_max_pages_to_scan, 30000);
        ck_assert_uint_eq(s.advisor_target_scan_time, 200);

        ck_assert_uint_eq(ksmctl_saved_bytes(&s, 4096), 32005ULL * 4096);
        ck_assert(ksmctl_scan_rate(&s, &rate));
        ck_assert_uint_eq(rate, 5000);
}
END_TEST

START_TEST(test_status_old_kernel) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        KsmctlReport rep = {};

        make_old_kernel();
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        ck_assert_uint_eq(s.present, UINT32_C(1) << KSMCTL_KNOB_MAX_KERNEL_PAGES);
        ck_assert_uint_eq(s.max_kernel_pages, 2000);
        ck_assert_ptr_null(s.advisor_mode);
        ck_assert_uint_eq(ksmctl_saved_bytes(&s, 4096), 0);
}
END_TEST

START_TEST(test_status_errors) {
        static const struct {
                const char *knob, *content;
                int r;
        } cases[] = {
                { "full_scans", NULL, -ENOENT },       { "run", "x\n", -EBADMSG },
                { "pages_sharing", "-1\n", -EBADMSG }, { "general_profit", "much\n", -EBADMSG },
                { "smart_scan", "yes\n", -EBADMSG },   { "advisor_mode", "none scan-time\n", -EBADMSG },
                { "ksm_zero_pages", "", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(ksmctl_status_done) KsmStatus s = { .run = 42 };
                KsmctlReport rep = {};

                make_new_kernel();
                if (cases[i].content)
                        put(cases[i].knob, cases[i].content);
                else
                        ck_assert_int_eq(unlinkat(dfd, cases[i].knob, 0), 0);
                ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), cases[i].r);
                ck_assert_str_eq(rep.knob, cases[i].knob);
                ck_assert(!rep.write);
                ck_assert_uint_eq(s.run, 42); /* untouched */
                ck_assert_ptr_null(s.advisor_mode);
        }
}
END_TEST

START_TEST(test_status_optional_unreadable) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        KsmctlReport rep = {};

        /* Present but unreadable is an error, not "this kernel lacks it". */
        make_new_kernel();
        ck_assert_int_eq(unlinkat(dfd, "use_zero_pages", 0), 0);
        ck_assert_int_eq(mkdirat(dfd, "use_zero_pages", 0755), 0);
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), -EISDIR);
        ck_assert_str_eq(rep.knob, "use_zero_pages");
}
END_TEST

START_TEST(test_scan_rate) {
        KsmStatus s = { .pages_to_scan = 1000, .sleep_millisecs = 10 };
        uint64_t rate = 42;

        ck_assert(ksmctl_scan_rate(&s, &rate));
        ck_assert_uint_eq(rate, 100000);
        s.sleep_millisecs = 3;
        ck_assert(ksmctl_scan_rate(&s, &rate));
        ck_assert_uint_eq(rate, 333333);
        s.sleep_millisecs = 0;
        rate = 42;
        ck_assert(!ksmctl_scan_rate(&s, &rate));
        ck_assert_uint_eq(rate, 42);
        s.pages_to_scan = UINT64_MAX;
        s.sleep_millisecs = 1;
        ck_assert(ksmctl_scan_rate(&s, &rate));
        ck_assert_uint_eq(rate, UINT64_MAX);

        s.pages_sharing = UINT64_MAX;
        ck_assert_uint_eq(ksmctl_saved_bytes(&s, 4096), UINT64_MAX);
}
END_TEST

/* Run a printer into memory and return what it printed. */
static char *print_status_cpu(int (*printer)(const KsmStatus *, const KsmdCpu *, uint64_t, FILE *), const KsmStatus *s,
                              const KsmdCpu *cpu) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(printer(s, cpu, 4096, f), 0);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

static char *print_status(int (*printer)(const KsmStatus *, const KsmdCpu *, uint64_t, FILE *), const KsmStatus *s) {
        return print_status_cpu(printer, s, NULL);
}

START_TEST(test_status_text) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *text = NULL;
        KsmctlReport rep = {};
        static const char *const lines[] = {
                "ksmd:                running (run = 1)",
                "\npages_to_scan:       100 (set by the scan-time advisor; the kernel refuses writes)\n",
                "\nsleep_millisecs:     20\n",
                "\nscan rate:           up to 5000 pages/s (19.5 MiB/s)\n",
                ("\nadvisor:             scan-time (target scan time 200 s, max CPU 70%, pages_to_scan 500..30000): "
                 "the kernel sets pages_to_scan\n"),
                "\nsmart_scan:          1 (on)\n",
                "\npages_shared:        1500\n",
                "\npages_sharing:       32000\n",
                "\npages_unshared:      700\n",
                "\npages_volatile:      12\n",
                "\nksm_zero_pages:      5\n",
                "\nfull_scans:          9\n",
                "\nmemory saved:        125.0 MiB (131092480 bytes: pages_sharing + ksm_zero_pages, 4096-byte pages)\n",
                "\ngeneral_profit:      -0.0 MiB (-8192 bytes)\n",
                "\nmax_page_sharing:    256\n",
                "\nmerge_across_nodes:  1 (on)\n",
                "\nuse_zero_pages:      0 (off)\n",
        };

        make_new_kernel();
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        text = print_status(ksmctl_status_print, &s);
        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                ck_assert_msg(strstr(text, lines[i]), "no '%s' in:\n%s", lines[i], text);
        ck_assert_ptr_null(strstr(text, "max_kernel_pages"));
        ck_assert_ptr_null(strstr(text, "ksmd CPU")); /* no KsmdCpu given */
}
END_TEST

START_TEST(test_status_text_advisor) {
        static const struct {
                const char *mode;    /* advisor_mode's content */
                const char *drop[5]; /* advisor knobs this kernel lacks */
                const char *advisor; /* the advisor line, after the label */
                bool owned;          /* pages_to_scan says the advisor sets it */
        } cases[] = {
                { "[none] scan-time",
                  {},
                  "none (scan-time would use: target scan time 200 s, max CPU 70%, pages_to_scan 500..30000)",
                  false },
                { "none [scan-time]",
                  {},
                  "scan-time (target scan time 200 s, max CPU 70%, pages_to_scan 500..30000): the kernel sets "
                  "pages_to_scan",
                  true },
                { "none [scan-time]",
                  { "advisor_max_cpu", "advisor_max_pages_to_scan" },
                  "scan-time (target scan time 200 s, pages_to_scan at least 500): the kernel sets pages_to_scan",
                  true },
                { "[none] scan-time",
                  { "advisor_max_cpu", "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
                    "advisor_target_scan_time" },
                  "none",
                  false },
                { "none scan-time [future]",
                  { "advisor_target_scan_time", "advisor_min_pages_to_scan" },
                  "future (max CPU 70%, pages_to_scan at most 30000)",
                  false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(ksmctl_status_done) KsmStatus s = {};
                _cleanup_free_ char *text = NULL;
                KsmctlReport rep = {};
                char want[256];

                make_new_kernel();
                put("advisor_mode", cases[i].mode);
                for (size_t d = 0; d < ELEMENTSOF(cases[i].drop) && cases[i].drop[d]; d++)
                        ck_assert_int_eq(unlinkat(dfd, cases[i].drop[d], 0), 0);
                ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
                text = print_status(ksmctl_status_print, &s);
                snprintf(want, sizeof(want), "\nadvisor:             %s\n", cases[i].advisor);
                ck_assert_msg(strstr(text, want), "%zu: no '%s' in:\n%s", i, want, text);
                ck_assert_msg(!!strstr(text, "\npages_to_scan:       100 (set by the scan-time advisor; the kernel "
                                             "refuses writes)\n") == cases[i].owned,
                              "%zu:\n%s", i, text);
                if (!cases[i].owned)
                        ck_assert_msg(strstr(text, "\npages_to_scan:       100\n"), "%zu:\n%s", i, text);
        }
}
END_TEST

START_TEST(test_status_text_old_kernel) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *text = NULL;
        KsmctlReport rep = {};
        static const char *const absent[] = {
                "advisor",          "smart_scan",         "ksm_zero_pages", "general_profit",
                "max_page_sharing", "merge_across_nodes", "use_zero_pages",
        };

        make_old_kernel();
        put("run", "2\n");
        put("sleep_millisecs", "0\n");
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        text = print_status(ksmctl_status_print, &s);
        ck_assert_msg(strstr(text, "ksmd:                stopped (run = 2)"), "%s", text);
        ck_assert_msg(strstr(text, "scan rate:           unbounded (sleep_millisecs is 0)\n"), "%s", text);
        ck_assert_msg(strstr(text, "max_kernel_pages:    2000\n"), "%s", text);
        ck_assert_msg(strstr(text, "memory saved:        0.0 MiB (0 bytes: pages_sharing, 4096-byte pages)\n"), "%s",
                      text);
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                ck_assert_msg(!strstr(text, absent[i]), "'%s' in:\n%s", absent[i], text);
}
END_TEST

START_TEST(test_status_print_failure) {
        KsmStatus s = {};
        FILE *f = fopen("/dev/full", "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(ksmctl_status_print(&s, NULL, 4096, f), -ENOSPC);
        clearerr(f);
        ck_assert_int_eq(ksmctl_status_print_json(&s, NULL, 4096, f), -ENOSPC);
        fclose(f);
}
END_TEST

/*
 * A strict reader of the flat JSON objects "status --json" prints: string keys, and values that are
 * integers, true, false, null or strings. It checks the syntax and that no key repeats.
 */
typedef struct JsonMember {
        char key[64];
        char value[256]; /* integers and literals as printed; strings decoded */
        bool is_string;
} JsonMember;

static const char *json_str(const char *p, char *out, size_t size) {
        size_t n = 0;

        if (*p++ != '"')
                return NULL;
        while (*p != '"') {
                char c = *p++;

                if ((unsigned char) c < 0x20 || c == '\0')
                        return NULL;
                if (c == '\\') {
                        c = *p++;
                        if (c == 'u') {
                                unsigned v;

                                if (sscanf(p, "%4x", &v) != 1 || v > 0x7f)
                                        return NULL;
                                for (int i = 0; i < 4; i++)
                                        if (!isxdigit((unsigned char) p[i]))
                                                return NULL;
                                p += 4;
                                c = (char) v;
                        } else if (c != '"' && c != '\\' && c != '/')
                                return NULL;
                }
                if (n + 1 >= size)
                        return NULL;
                out[n++] = c;
        }
        out[n] = '\0';
        return p + 1;
}

/* A JSON number, as RFC 8259 spells it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number_ok(const char *p) {
        if (*p == '-')
                p++;
        if (*p == '0')
                p++;
        else if (*p >= '1' && *p <= '9')
                while (isdigit((unsigned char) *p))
                        p++;
        else
                return false;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char) *p))
                        return false;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!isdigit((unsigned char) *p))
                        return false;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        return *p == '\0';
}

static int json_parse_flat(const char *p, JsonMember *m, size_t max) {
        size_t count = 0;

        if (*p++ != '{')
                return -1;
        if (*p == '}')
                return streq(p, "}\n") ? 0 : -1;
        for (;;) {
                if (count >= max)
                        return -1;
                p = json_str(p, m[count].key, sizeof(m[count].key));
                if (!p || *p++ != ':')
                        return -1;
                for (size_t i = 0; i < count; i++)
                        if (streq(m[i].key, m[count].key))
                                return -1;
                if (*p == '"') {
                        p = json_str(p, m[count].value, sizeof(m[count].value));
                        if (!p)
                                return -1;
                        m[count].is_string = true;
                } else {
                        size_t n = strcspn(p, ",}");

                        if (n == 0 || n >= sizeof(m[count].value))
                                return -1;
                        memcpy(m[count].value, p, n);
                        m[count].value[n] = '\0';
                        p += n;
                        if (!streq(m[count].value, "true") && !streq(m[count].value, "false") &&
                            !streq(m[count].value, "null") && !json_number_ok(m[count].value))
                                return -1;
                        m[count].is_string = false;
                }
                count++;
                if (*p == ',') {
                        p++;
                        continue;
                }
                if (streq(p, "}\n"))
                        return (int) count;
                return -1;
        }
}

static const JsonMember *json_get(const JsonMember *m, int n, const char *key) {
        for (int i = 0; i < n; i++)
                if (streq(m[i].key, key))
                        return &m[i];
        return NULL;
}

static void check_member(const JsonMember *m, int n, const char *key, const char *value, bool is_string) {
        const JsonMember *j = json_get(m, n, key);

        ck_assert_msg(j, "no key '%s'", key);
        ck_assert_msg(streq(j->value, value) && j->is_string == is_string, "'%s' is %s, expected %s", key, j->value,
                      value);
}

START_TEST(test_json_reader) {
        JsonMember m[4];

        ck_assert_int_eq(json_parse_flat("{}\n", m, 4), 0);
        ck_assert_int_eq(json_parse_flat("{\"a\":1,\"b\":\"x\\\"y\"}\n", m, 4), 2);
        ck_assert_str_eq(m[1].value, "x\"y");
        ck_assert_int_eq(json_parse_flat("{\"a\":1,\"a\":2}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":01}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":1,}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":tru}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":\"\t\"}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":1}", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":1.5,\"b\":-0.25,\"c\":0.00,\"d\":1e3}\n", m, 4), 4);
        ck_assert_str_eq(m[2].value, "0.00");
        ck_assert_int_eq(json_parse_flat("{\"a\":1.}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":.5}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":NaN}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":inf}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":1e}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":-}\n", m, 4), -1);
        ck_assert_int_eq(json_parse_flat("{\"a\":1,5}\n", m, 4), -1);
}
END_TEST

START_TEST(test_status_json) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *text = NULL;
        KsmctlReport rep = {};
        JsonMember m[64];
        int n;
        static const char *const numbers[][2] = {
                { "run", "1" },
                { "pages_to_scan", "100" },
                { "sleep_millisecs", "20" },
                { "scan_pages_per_sec", "5000" },
                { "pages_shared", "1500" },
                { "pages_sharing", "32000" },
                { "pages_unshared", "700" },
                { "pages_volatile", "12" },
                { "full_scans", "9" },
                { "page_size", "4096" },
                { "saved_bytes", "131092480" },
                { "max_page_sharing", "256" },
                { "merge_across_nodes", "1" },
                { "use_zero_pages", "0" },
                { "stable_node_chains", "3" },
                { "stable_node_dups", "4" },
                { "pages_scanned", "123456" },
                { "pages_skipped", "789" },
                { "ksm_zero_pages", "5" },
                { "general_profit", "-8192" },
                { "smart_scan", "1" },
                { "advisor_max_cpu", "70" },
                { "advisor_min_pages_to_scan", "500" },
                { "advisor_max_pages_to_scan", "30000" },
                { "advisor_target_scan_time", "200" },
        };

        make_new_kernel();
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        text = print_status(ksmctl_status_print_json, &s);
        n = json_parse_flat(text, m, ELEMENTSOF(m));
        ck_assert_msg(n == (int) ELEMENTSOF(numbers) + 2, "%d members in %s", n, text);
        for (size_t i = 0; i < ELEMENTSOF(numbers); i++)
                check_member(m, n, numbers[i][0], numbers[i][1], false);
        check_member(m, n, "running", "true", false);
        check_member(m, n, "advisor_mode", "scan-time", true);
        ck_assert_ptr_null(json_get(m, n, "max_kernel_pages"));
}
END_TEST

START_TEST(test_status_json_old_kernel) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *text = NULL;
        KsmctlReport rep = {};
        JsonMember m[64];
        int n;

        make_old_kernel();
        put("sleep_millisecs", "0\n");
        put("run", "2\n");
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        text = print_status(ksmctl_status_print_json, &s);
        n = json_parse_flat(text, m, ELEMENTSOF(m));
        ck_assert_msg(n == 13, "%d members in %s", n, text);
        check_member(m, n, "run", "2", false);
        check_member(m, n, "running", "false", false);
        check_member(m, n, "scan_pages_per_sec", "null", false);
        check_member(m, n, "max_kernel_pages", "2000", false);
        ck_assert_ptr_null(json_get(m, n, "advisor_mode"));
        ck_assert_ptr_null(json_get(m, n, "general_profit"));
}
END_TEST

START_TEST(test_status_json_escaping) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *text = NULL;
        KsmctlReport rep = {};
        JsonMember m[64];
        int n;

        /* Nothing trusts a file's content: a strange choice word still makes valid JSON. */
        make_new_kernel();
        put("advisor_mode", "[a\"b\\c\x01] none\n");
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        text = print_status(ksmctl_status_print_json, &s);
        ck_assert_msg(strstr(text, "\"advisor_mode\":\"a\\\"b\\\\c\\u0001\""), "%s", text);
        n = json_parse_flat(text, m, ELEMENTSOF(m));
        ck_assert_int_gt(n, 0);
        check_member(m, n, "advisor_mode", "a\"b\\c\x01", true);
}
END_TEST

/*
 * ksmd's CPU time, against a fake /proc under the temporary directory, with a fake clock whose sleep
 * moves the time on and rewrites ksmd's stat, as the kernel would have during the window.
 */
static void put_proc(const char *rel, const char *content) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "proc/%s", rel);
        fake_put(&t, path, "%s", content);
}

static void put_stat(int pid, const char *comm, int ppid, uint64_t utime, uint64_t stime) {
        fake_stat(&t, pid, comm, ppid, utime, stime);
}

static const char *proc_dir(void) {
        return t.proc;
}

/* init, kthreadd, ksmd as PID 37 (utime 100, stime 50), a user process named ksmd, a strange name. */
static void make_proc_tree(void) {
        put_stat(1, "systemd", 0, 500, 700);
        put_stat(2, "kthreadd", 0, 0, 0);
        put_stat(37, "ksmd", 2, 100, 50);
        put_stat(12, "ksmd", 1, 9000, 9000);
        put_stat(4000, "a) b (c) S 2 0", 1, 1, 1);
        put_proc("meminfo", "MemTotal: 1000 kB\n");
}

typedef struct FakeClock {
        uint64_t now;      /* microseconds */
        uint64_t extra_us; /* how much longer than asked each sleep lasts */
        bool frozen;       /* the clock does not move */
        unsigned sleeps;   /* sleeps so far */
        uint64_t slept_ms; /* the last sleep asked for */
        int pid;           /* the stat the sleep rewrites, 0 none */
        const char *comm;
        int ppid;
        uint64_t utime, stime;
        bool remove; /* the sleep removes PID's directory instead */
} FakeClock;

static uint64_t fake_now(void *userdata) {
        return ((FakeClock *) userdata)->now;
}

static void fake_sleep(uint64_t msec, void *userdata) {
        FakeClock *c = userdata;

        c->sleeps++;
        c->slept_ms = msec;
        if (!c->frozen)
                c->now += msec * 1000 + c->extra_us;
        if (c->remove) {
                char path[PATH_MAX + 32];

                snprintf(path, sizeof(path), "%s/%d/stat", proc_dir(), c->pid);
                ck_assert_int_eq(unlink(path), 0);
                snprintf(path, sizeof(path), "%s/%d", proc_dir(), c->pid);
                ck_assert_int_eq(rmdir(path), 0);
        } else if (c->pid)
                put_stat(c->pid, c->comm, c->ppid, c->utime, c->stime);
}

#define FAKE_CLOCK(fc)                                                                                                 \
        { .now_usec = fake_now, .sleep_ms = fake_sleep, .userdata = (fc) }

START_TEST(test_ksmd_cpu_window) {
        /* 30 ticks in 0.5 s at 100 ticks a second: 0.3 s of CPU in 0.5 s, 60% of one CPU. */
        FakeClock fc = { .now = 1000000000, .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 120, .stime = 60 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = {};
        double pct = -1;

        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), 0);
        ck_assert_uint_eq(fc.sleeps, 1);
        ck_assert_uint_eq(fc.slept_ms, 500);
        ck_assert(c.found);
        ck_assert_int_eq(c.pid, 37);
        ck_assert_uint_eq(c.ticks_per_sec, 100);
        ck_assert_uint_eq(c.ticks, 180);
        ck_assert_uint_eq(c.sample_ms, 500);
        ck_assert(c.sampled);
        ck_assert_uint_eq(c.window_usec, 500000);
        ck_assert_uint_eq(c.window_ticks, 30);
        ck_assert(ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq_tol(pct, 60.0, 1e-9);
        ck_assert_double_eq_tol(ksmctl_ksmd_cpu_seconds(&c), 1.8, 1e-9);
}
END_TEST

START_TEST(test_ksmd_cpu_clk_tck) {
        /* The same with this system's ticks a second, as ksmctl uses them. */
        long tck = sysconf(_SC_CLK_TCK);
        FakeClock fc = { .now = 5, .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 100 + (uint64_t) tck, .stime = 50 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = {};
        double pct = -1;

        ck_assert_int_gt(tck, 0);
        make_proc_tree();
        /* One second of CPU time over two seconds: 50%. */
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), (uint64_t) tck, 2000, &clock, &c), 0);
        ck_assert(ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq_tol(pct, 50.0, 1e-9);
        ck_assert_double_eq_tol(ksmctl_ksmd_cpu_seconds(&c), (150.0 + (double) tck) / (double) tck, 1e-9);
}
END_TEST

START_TEST(test_ksmd_cpu_window_measured) {
        /* A sleep that lasts 600 ms instead of 500: the percentage is over the 600 ms. */
        FakeClock fc = { .extra_us = 100000, .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 130, .stime = 50 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = {};
        double pct = -1;

        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), 0);
        ck_assert_uint_eq(c.window_usec, 600000);
        ck_assert(ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq_tol(pct, 50.0, 1e-9);

        /* Idle: 0%, still a figure. */
        fc = (FakeClock) { .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 100, .stime = 50 };
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 10, &clock, &c), 0);
        ck_assert(ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq_tol(pct, 0.0, 1e-12);
}
END_TEST

START_TEST(test_ksmd_cpu_no_sample) {
        KsmdCpu c = {};
        double pct = -1;

        /* --sample=0: the total only, at once; no clock needed. */
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 0, NULL, &c), 0);
        ck_assert(c.found);
        ck_assert_int_eq(c.pid, 37);
        ck_assert_uint_eq(c.ticks, 150);
        ck_assert_uint_eq(c.sample_ms, 0);
        ck_assert(!c.sampled);
        ck_assert(!ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq(pct, -1);
        ck_assert_double_eq_tol(ksmctl_ksmd_cpu_seconds(&c), 1.5, 1e-12);
}
END_TEST

START_TEST(test_ksmd_cpu_not_sampled) {
        FakeClock fc = { .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 90, .stime = 50 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = {};
        double pct = -1;

        /* A total that went down is not the same thread's: no figure, but ksmd is there. */
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), 0);
        ck_assert(c.found);
        ck_assert(!c.sampled);
        ck_assert_uint_eq(c.ticks, 140);
        ck_assert(!ksmctl_ksmd_cpu_percent(&c, &pct));

        /* A clock that did not move measures nothing. */
        fc = (FakeClock) { .frozen = true, .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 200, .stime = 50 };
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), 0);
        ck_assert(c.found && !c.sampled);
        ck_assert(!ksmctl_ksmd_cpu_percent(&c, &pct));
        ck_assert_double_eq(pct, -1);
}
END_TEST

START_TEST(test_ksmd_cpu_errors) {
        FakeClock fc = {};
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = { .pid = 4242 };
        char missing[PATH_MAX];

        /* No ksmd: only init and a user process that calls itself ksmd (its parent is init, not kthreadd). */
        put_stat(1, "systemd", 0, 1, 1);
        put_stat(12, "ksmd", 1, 9000, 9000);
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), -ESRCH);
        ck_assert_int_eq(c.pid, 4242); /* untouched */
        ck_assert_uint_eq(fc.sleeps, 0);

        snprintf(missing, sizeof(missing), "%s/nonexistent", t.root);
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(missing, 100, 0, NULL, &c), -ENOENT);

        put_stat(37, "ksmd", 2, 100, 50);
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 0, 0, NULL, &c), -EINVAL);
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, NULL, &c), -EINVAL);
        ck_assert_int_eq(c.pid, 4242);
}
END_TEST

START_TEST(test_ksmd_cpu_gone) {
        FakeClock fc = { .pid = 37, .comm = "bash", .ppid = 1, .utime = 1, .stime = 1 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmdCpu c = { .pid = 4242 };

        /* The PID is another process's by the end of the window. */
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), -ESRCH);
        ck_assert_uint_eq(fc.sleeps, 1);
        ck_assert_int_eq(c.pid, 4242);

        /* ... or gone. */
        fc = (FakeClock) { .pid = 37, .remove = true };
        make_proc_tree();
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), -ESRCH);
        ck_assert_int_eq(c.pid, 4242);
}
END_TEST

START_TEST(test_ksmd_cpu_text) {
        static const struct {
                KsmdCpu cpu;
                const char *line;
        } cases[] = {
                { { .found = true,
                    .pid = 37,
                    .ticks_per_sec = 100,
                    .ticks = 123456,
                    .sample_ms = 500,
                    .sampled = true,
                    .window_usec = 500000,
                    .window_ticks = 6 },
                  "12.0% of one CPU over 500 ms, 1234.56 s in total (PID 37)" },
                { { .found = true, .pid = 37, .ticks_per_sec = 100, .ticks = 5, .sample_ms = 0 },
                  "0.05 s in total (PID 37)" },
                { { .found = true, .pid = 37, .ticks_per_sec = 100, .ticks = 5, .sample_ms = 500 },
                  "not sampled (the window could not be measured), 0.05 s in total (PID 37)" },
                { { .found = true,
                    .pid = 99,
                    .ticks_per_sec = 1000,
                    .ticks = 1234,
                    .sample_ms = 10000,
                    .sampled = true,
                    .window_usec = 10000000,
                    .window_ticks = 10000 },
                  "100.0% of one CPU over 10000 ms, 1.234 s in total (PID 99)" },
                { { .sample_ms = 500 },
                  "unknown: ksmd not found (no KSM in this kernel, or kernel threads are hidden, as in a container)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                KsmStatus s = { .run = 1, .pages_to_scan = 100, .sleep_millisecs = 20 };
                char want[512];

                text = print_status_cpu(ksmctl_status_print, &s, &cases[i].cpu);
                /* Right under the line that says whether ksmd runs. */
                snprintf(want, sizeof(want), "pages\nksmd CPU:            %s\npages_to_scan:", cases[i].line);
                ck_assert_msg(strstr(text, want), "%zu: no '%s' in:\n%s", i, want, text);
        }
}
END_TEST

START_TEST(test_ksmd_cpu_json) {
        static const struct {
                KsmdCpu cpu;
                const char *sample_ms, *pid, *seconds, *percent; /* NULL: the key is absent */
        } cases[] = {
                { { .found = true,
                    .pid = 37,
                    .ticks_per_sec = 100,
                    .ticks = 123456,
                    .sample_ms = 500,
                    .sampled = true,
                    .window_usec = 500000,
                    .window_ticks = 6 },
                  "500",
                  "37",
                  "1234.56",
                  "12.00" },
                { { .found = true, .pid = 37, .ticks_per_sec = 100, .ticks = 7, .sample_ms = 0 },
                  "0",
                  "37",
                  "0.07",
                  NULL },
                { { .found = true,
                    .pid = 37,
                    .ticks_per_sec = 100,
                    .ticks = 0,
                    .sample_ms = 250,
                    .sampled = true,
                    .window_usec = 250000,
                    .window_ticks = 0 },
                  "250",
                  "37",
                  "0.00",
                  "0.00" },
                { { .found = true,
                    .pid = 5,
                    .ticks_per_sec = 1000,
                    .ticks = 1234,
                    .sample_ms = 3,
                    .sampled = true,
                    .window_usec = 3000,
                    .window_ticks = 1 },
                  "3",
                  "5",
                  "1.234",
                  "33.33" },
                { { .found = true, .pid = 5, .ticks_per_sec = 1, .ticks = 5 }, "0", "5", "5.0", NULL },
                { { .found = true, .pid = 5, .ticks_per_sec = 3, .ticks = 4 }, "0", "5", "1.3", NULL },
                { { .found = true, .pid = 5, .ticks_per_sec = 100, .ticks = UINT64_MAX },
                  "0",
                  "5",
                  "184467440737095516.15",
                  NULL },
                { { .sample_ms = 500 }, "500", NULL, NULL, NULL },
                { { .sample_ms = 0 }, "0", NULL, NULL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                KsmStatus s = { .run = 1, .pages_to_scan = 100, .sleep_millisecs = 20 };
                const char *want[][2] = {
                        { "sample_ms", cases[i].sample_ms },
                        { "ksmd_pid", cases[i].pid },
                        { "ksmd_cpu_seconds", cases[i].seconds },
                        { "ksmd_cpu_percent", cases[i].percent },
                };
                JsonMember m[32];
                int n;

                text = print_status_cpu(ksmctl_status_print_json, &s, &cases[i].cpu);
                n = json_parse_flat(text, m, ELEMENTSOF(m));
                ck_assert_msg(n > 0, "%zu: not JSON: %s", i, text);
                for (size_t k = 0; k < ELEMENTSOF(want); k++)
                        if (want[k][1])
                                check_member(m, n, want[k][0], want[k][1], false);
                        else
                                ck_assert_msg(!json_get(m, n, want[k][0]), "%zu: '%s' in %s", i, want[k][0], text);
        }
}
END_TEST

START_TEST(test_ksmd_cpu_status_end_to_end) {
        /* What "ksmctl --proc DIR status --json" does, with the fake clock: read, sample, print. */
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *json = NULL, *text = NULL;
        FakeClock fc = { .pid = 37, .comm = "ksmd", .ppid = 2, .utime = 101, .stime = 50 };
        KsmctlClock clock = FAKE_CLOCK(&fc);
        KsmctlReport rep = {};
        KsmdCpu c = {};
        JsonMember m[64];
        int n;

        make_new_kernel();
        make_proc_tree();
        ck_assert_int_eq(ksmctl_status_read(dfd, &s, &rep), 0);
        ck_assert_int_eq(ksmctl_ksmd_cpu_read(proc_dir(), 100, 500, &clock, &c), 0);
        json = print_status_cpu(ksmctl_status_print_json, &s, &c);
        n = json_parse_flat(json, m, ELEMENTSOF(m));
        ck_assert_msg(n == 25 + 2 + 4, "%d members in %s", n, json);
        check_member(m, n, "sample_ms", "500", false);
        check_member(m, n, "ksmd_pid", "37", false);
        check_member(m, n, "ksmd_cpu_seconds", "1.51", false);
        check_member(m, n, "ksmd_cpu_percent", "2.00", false);
        text = print_status_cpu(ksmctl_status_print, &s, &c);
        ck_assert_msg(strstr(text, "\nksmd CPU:            2.0% of one CPU over 500 ms, 1.51 s in total (PID 37)\n"),
                      "%s", text);
}
END_TEST

/* ---- ksmctl guests ---- */

static const struct {
        int64_t bytes;
        const char *text;
} bytes_cases[] = {
        { 0, "0 B" },
        { 1023, "1023 B" },
        { 1024, "1.0 KiB" },
        { 1536, "1.5 KiB" },
        { 33554432, "32.0 MiB" },
        { -33554432, "-32.0 MiB" },
        { INT64_C(5) << 40, "5.0 TiB" },
        { INT64_C(3) << 50, "3072.0 TiB" },
        { INT64_MIN, "-8388608.0 TiB" },
};

START_TEST(test_format_bytes) {
        char buf[32];

        ksmctl_format_bytes(buf, sizeof(buf), bytes_cases[_i].bytes);
        ck_assert_str_eq(buf, bytes_cases[_i].text);
}
END_TEST

/* Three guests as a 6.18 kernel reports them, one as a kernel without any per-process file. */
static GuestInfo guests_sample[4];

static GuestList guests_list(bool old_kernel) {
        guests_sample[0] = (GuestInfo) { .pid = 1201,
                                         .name = (char *) "web",
                                         .named = true,
                                         .rss_bytes = 40 << 20,
                                         .mergeable = 1,
                                         .ksm = { .has_rmap_items = true,
                                                  .has_merging_pages = true,
                                                  .has_zero_pages = true,
                                                  .has_profit = true,
                                                  .has_mergeable = true,
                                                  .has_merge_any = true,
                                                  .rmap_items = 8200,
                                                  .merging_pages = 8192,
                                                  .zero_pages = 2,
                                                  .profit = 8194 * 4096 - 8200 * 64,
                                                  .mergeable = true } };
        guests_sample[1] = guests_sample[0];
        guests_sample[1].pid = 1202;
        guests_sample[1].name = (char *) "db";
        guests_sample[2] = (GuestInfo) { .pid = 1203,
                                         .name = (char *) "qemu-system-x86",
                                         .rss_bytes = 40 << 20,
                                         .mergeable = 0,
                                         .reason = KSM_UNMERGEABLE_MEM_MERGE_OFF,
                                         .ksm = { .has_rmap_items = true,
                                                  .has_merging_pages = true,
                                                  .has_zero_pages = true,
                                                  .has_profit = true,
                                                  .has_mergeable = true,
                                                  .has_merge_any = true } };
        guests_sample[3] = (GuestInfo) { .pid = 1204,
                                         .name = (char *) "old",
                                         .named = true,
                                         .rss_bytes = 1000,
                                         .mergeable = -1,
                                         .ksm_error = -ENOENT };
        if (old_kernel)
                return (GuestList) { .guests = guests_sample + 3, .n = 1 };
        return (GuestList) { .guests = guests_sample, .n = 3 };
}

static char *print_guests(bool json, const GuestList *l, const KsmStatus *ksm) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq((json ? ksmctl_guests_print_json : ksmctl_guests_print)(l, ksm, 4096, f), 0);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

/* KSM as a whole when these three guests are all it merged: 8192 pairs, two zero pages each. */
static KsmStatus guests_ksm(void) {
        return (KsmStatus) { .run = 1,
                             .pages_shared = 8192,
                             .pages_sharing = 8192,
                             .ksm_zero_pages = 4,
                             .general_profit = (8192 + 4) * 4096 - 2 * 8200 * 64,
                             .present = 1u << KSMCTL_KNOB_KSM_ZERO_PAGES | 1u << KSMCTL_KNOB_GENERAL_PROFIT };
}

START_TEST(test_guests_sums) {
        GuestList l = guests_list(false);
        KsmStatus ksm = guests_ksm();
        GuestSums sums;

        ksmctl_guest_sums(&l, 4096, &sums);
        ck_assert_uint_eq(sums.guests, 3);
        ck_assert_uint_eq(sums.rss_bytes, 120 << 20);
        /* What ksmctl status reports, when these guests are all KSM merged. */
        ck_assert_uint_eq(sums.merged_bytes, (ksm.pages_shared + ksm.pages_sharing) * 4096);
        ck_assert_uint_eq(sums.zero_bytes, ksm.ksm_zero_pages * 4096);
        ck_assert_int_eq(sums.profit_bytes - (int64_t) (ksm.pages_shared * 4096), ksm.general_profit);
        ck_assert(sums.has_merged && sums.has_zero && sums.has_profit);

        l = guests_list(true);
        ksmctl_guest_sums(&l, 4096, &sums);
        ck_assert(!sums.has_merged && !sums.has_zero && !sums.has_profit && !sums.has_saved);
        ck_assert_uint_eq(sums.rss_bytes, 1000);
}
END_TEST

START_TEST(test_guests_table) {
        GuestList l = guests_list(false);
        KsmStatus ksm = guests_ksm();
        _cleanup_free_ char *text = print_guests(false, &l, &ksm), *old = NULL;

        ck_assert_ptr_nonnull(
                strstr(text, "    PID  GUEST             RESIDENT     MERGED       ZERO     PROFIT  MERGEABLE\n"));
        ck_assert_ptr_nonnull(
                strstr(text, "   1201  web               40.0 MiB   32.0 MiB    8.0 KiB   31.5 MiB  yes\n"));
        ck_assert_ptr_nonnull(
                strstr(text, "   1203  qemu-system-x86   40.0 MiB        0 B        0 B        0 B  no: QEMU runs "
                             "with -machine mem-merge=off"));
        ck_assert_ptr_nonnull(strstr(text, "  total  3 guests         120.0 MiB   64.0 MiB   16.0 KiB   63.0 MiB\n"));
        ck_assert_ptr_nonnull(strstr(text, "KSM, all processes (as ksmctl status): 64.0 MiB merged (pages_shared + "
                                           "pages_sharing), 32.0 MiB saved, general_profit 31.0 MiB\n"));

        l = guests_list(true);
        old = print_guests(false, &l, NULL);
        ck_assert_str_eq(old, "    PID  GUEST        RESIDENT     MERGED       ZERO     PROFIT  MERGEABLE\n"
                              "   1204  old            1000 B          -          -          -  -\n"
                              "  total  1 guest        1000 B          -          -          -\n");
}
END_TEST

START_TEST(test_guests_json) {
        GuestList l = guests_list(false);
        KsmStatus ksm = guests_ksm();
        _cleanup_free_ char *text = print_guests(true, &l, &ksm), *old = NULL, *denied = NULL;

        ck_assert_ptr_nonnull(strstr(text,
                                     "{\"page_size\":4096,\"guests\":[{\"pid\":1201,\"name\":\"web\",\"name_source\":"
                                     "\"cmdline\",\"resident_bytes\":41943040,\"merged_bytes\":33554432,"
                                     "\"zero_page_bytes\":8192,\"profit_bytes\":33037824,\"saved_bytes\":33562624,"
                                     "\"rmap_items\":8200,\"merge_any\":false,\"mergeable\":true}"));
        ck_assert_ptr_nonnull(strstr(text, "{\"pid\":1203,\"name\":\"qemu-system-x86\",\"name_source\":\"comm\","
                                           "\"resident_bytes\":41943040,\"merged_bytes\":0,"));
        ck_assert_ptr_nonnull(strstr(text,
                                     "\"mergeable\":false,\"reason\":\"mem-merge-off\",\"reason_text\":\"QEMU runs "
                                     "with -machine mem-merge=off (libvirt: <memoryBacking><nosharepages/>)\"}"));
        ck_assert_ptr_nonnull(strstr(text, "],\"totals\":{\"guests\":3,\"resident_bytes\":125829120,\"merged_bytes\":"
                                           "67108864,\"zero_page_bytes\":16384,\"profit_bytes\":66075648,"
                                           "\"saved_bytes\":67125248}"));
        ck_assert_ptr_nonnull(strstr(text, ",\"ksm\":{\"pages_shared\":8192,\"pages_sharing\":8192,\"merged_bytes\":"
                                           "67108864,\"saved_bytes\":33570816,\"ksm_zero_pages\":4,\"general_profit\":"
                                           "32521216}}\n"));

        /* Figures the kernel lacks are absent, never 0. */
        l = guests_list(true);
        old = print_guests(true, &l, NULL);
        ck_assert_str_eq(old,
                         "{\"page_size\":4096,\"guests\":[{\"pid\":1204,\"name\":\"old\",\"name_source\":\"cmdline\","
                         "\"resident_bytes\":1000}],\"totals\":{\"guests\":1,\"resident_bytes\":1000}}\n");

        guests_sample[3].ksm_error = -EACCES;
        denied = print_guests(true, &l, NULL);
        ck_assert_ptr_nonnull(strstr(denied, "\"resident_bytes\":1000,\"ksm_stat_error\":\"Permission denied\"}"));
}
END_TEST

START_TEST(test_guests_write_error) {
        GuestList l = guests_list(false);
        FILE *f = fopen("/dev/full", "w");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(ksmctl_guests_print(&l, NULL, 4096, f), -ENOSPC);
        ck_assert_int_eq(ksmctl_guests_print_json(&l, NULL, 4096, f), -ENOSPC);
        fclose(f);
}
END_TEST

static Suite *ksmctl_suite(void) {
        Suite *s = suite_create("ksmctl");
        TCase *tc;

        tc = tcase_create("limit");
        tcase_add_test(tc, test_max_kernel_pages);
        tcase_add_test(tc, test_mem_available);
        tcase_add_test(tc, test_scan_rate);
        tcase_add_test(tc, test_json_reader);
        suite_add_tcase(s, tc);

        tc = tcase_create("operations");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_start_new_kernel);
        tcase_add_test(tc, test_start_old_kernel);
        tcase_add_test(tc, test_start_limit_unwritable);
        tcase_add_test(tc, test_start_run_missing);
        tcase_add_test(tc, test_start_run_refused);
        tcase_add_test(tc, test_stop);
        tcase_add_test(tc, test_unmerge_refused);
        tcase_add_test(tc, test_unmerge_old_meminfo);
        tcase_add_test(tc, test_unmerge_zero_pages);
        tcase_add_test(tc, test_unmerge_forced);
        tcase_add_test(tc, test_unmerge_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("status");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_status_new_kernel);
        tcase_add_test(tc, test_status_old_kernel);
        tcase_add_test(tc, test_status_errors);
        tcase_add_test(tc, test_status_optional_unreadable);
        tcase_add_test(tc, test_status_text);
        tcase_add_test(tc, test_status_text_advisor);
        tcase_add_test(tc, test_status_text_old_kernel);
        tcase_add_test(tc, test_status_print_failure);
        tcase_add_test(tc, test_status_json);
        tcase_add_test(tc, test_status_json_old_kernel);
        tcase_add_test(tc, test_status_json_escaping);
        suite_add_tcase(s, tc);

        tc = tcase_create("ksmd CPU");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_ksmd_cpu_window);
        tcase_add_test(tc, test_ksmd_cpu_clk_tck);
        tcase_add_test(tc, test_ksmd_cpu_window_measured);
        tcase_add_test(tc, test_ksmd_cpu_no_sample);
        tcase_add_test(tc, test_ksmd_cpu_not_sampled);
        tcase_add_test(tc, test_ksmd_cpu_errors);
        tcase_add_test(tc, test_ksmd_cpu_gone);
        tcase_add_test(tc, test_ksmd_cpu_text);
        tcase_add_test(tc, test_ksmd_cpu_json);
        tcase_add_test(tc, test_ksmd_cpu_status_end_to_end);
        suite_add_tcase(s, tc);

        tc = tcase_create("guests");
        tcase_add_loop_test(tc, test_format_bytes, 0, ELEMENTSOF(bytes_cases));
        tcase_add_test(tc, test_guests_sums);
        tcase_add_test(tc, test_guests_table);
        tcase_add_test(tc, test_guests_json);
        tcase_add_test(tc, test_guests_write_error);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ksmctl_suite());
}
