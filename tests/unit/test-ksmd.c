/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of shared/ksmd: /proc/PID/stat parsing on captured and broken lines, finding ksmd in fake /proc trees. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "ksmd.h"
#include "util.h"

#include "fake-tree.h"

static FakeTree t;

static void setup(void) {
        fake_tree_new(&t, "ksmd");
}

static void teardown(void) {
        fake_tree_free(&t);
}

static char *fixture_text(const char *name) {
        return unit_fixture("proc-stat", name, NULL);
}

/* Captured from Linux 6.18 (this project's machine); comm as /proc/PID/stat shows it. */
START_TEST(test_parse_fixtures) {
        static const struct {
                const char *file, *comm;
                char state;
                int64_t ppid;
                uint64_t utime, stime;
        } cases[] = {
                { "ksmd.stat", "ksmd", 'S', 2, 2, 16 },
                { "kthreadd.stat", "kthreadd", 'S', 0, 0, 0 },
                { "init.stat", "process_api", 'S', 0, 55, 70 },
                /* A kernel thread's name in stat may be longer than 15 characters; it is cut. */
                { "kworker-long-comm.stat", "kworker/u8:1-ev", 'I', 2, 1, 0 },
                /* prctl(PR_SET_NAME) names: ')' and "(" and a fake "S 2 0" in the name, and a newline. */
                { "weird-comm.stat", "a) b (c) S 2 0", 'R', 24430, 3, 0 },
                { "newline-comm.stat", "x\ny) (z", 'R', 24430, 2, 0 },
                { "user-ksmd.stat", "ksmd", 'R', 24430, 2, 0 },
                { "huge-times.stat", "ksmd", 'S', 2, UINT64_MAX, UINT64_MAX - 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = fixture_text(cases[i].file);
                ProcStat s = {};

                ck_assert_msg(proc_stat_parse(text, &s) == 0, "%s", cases[i].file);
                ck_assert_msg(streq(s.comm, cases[i].comm), "%s: comm '%s'", cases[i].file, s.comm);
                ck_assert_msg(s.state == cases[i].state, "%s: state '%c'", cases[i].file, s.state);
                ck_assert_msg(s.ppid == cases[i].ppid, "%s: ppid %" PRIi64, cases[i].file, s.ppid);
                ck_assert_msg(s.utime == cases[i].utime && s.stime == cases[i].stime,
                              "%s: utime %" PRIu64 " stime %" PRIu64, cases[i].file, s.utime, s.stime);
        }
}
END_TEST

START_TEST(test_parse_bad_fixtures) {
        static const char *const bad[] = {
                "truncated.stat",                              /* cut after utime */
                "no-close-paren.stat",                         /* "(ksmd S 2 ..." */
                "malformed-utime.stat", "overflow-utime.stat", /* 2^64 */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = fixture_text(bad[i]);
                ProcStat s = { .ppid = 42, .utime = 42 };

                ck_assert_msg(proc_stat_parse(text, &s) == -EBADMSG, "%s", bad[i]);
                ck_assert_msg(s.ppid == 42 && s.utime == 42, "%s: touched on failure", bad[i]);
        }
}
END_TEST

/* Fields 16 to 52 of a kernel thread's stat line. */
#define TAIL                                                                                                           \
        " 0 0 25 5 1 0 9 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

static void check_bad(const char *text) {
        ProcStat s = { .ppid = 42, .utime = 42, .stime = 42 };
        int r = proc_stat_parse(text, &s);

        ck_assert_msg(r == -EBADMSG, "'%s': %d, ppid %" PRIi64 " utime %" PRIu64 " stime %" PRIu64, text, r, s.ppid,
                      s.utime, s.stime);
        ck_assert_msg(s.ppid == 42 && s.utime == 42 && s.stime == 42, "'%s': touched on failure", text);
}

START_TEST(test_parse_strings) {
        static const struct {
                const char *text;
                const char *comm;
                int64_t ppid;
                uint64_t utime, stime;
        } good[] = {
                { "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL, "ksmd", 2, 7, 9 },
                /* Fields up to stime are enough; no newline needed. */
                { "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 9", "ksmd", 2, 7, 9 },
                { "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 9\n", "ksmd", 2, 7, 9 },
                { "5 () R 1 0 0 0 -1 0 0 0 0 0 1 2" TAIL, "", 1, 1, 2 },
                { "5 ((x)) R 1 0 0 0 -1 0 0 0 0 0 1 2" TAIL, "(x)", 1, 1, 2 },
                { "5 (a b) Z 1 0 0 0 -1 0 0 0 0 0 1 2" TAIL, "a b", 1, 1, 2 },
                /* A name that ends like the fields do: only the last ')' ends it. */
                { "5 (x) S 2 0 0 0 -1 0 0 0 0 0 8 8) R 1 0 0 0 -1 0 0 0 0 0 1 2" TAIL, "x) S 2 0 0 0 -1", 1, 1, 2 },
                { "5 (x) R 9223372036854775807 0 0 0 -1 0 0 0 0 0 18446744073709551615 0" TAIL, "x", INT64_MAX,
                  UINT64_MAX, 0 },
                /* tpgid (8) is -1 without a controlling terminal. */
                { "5 (x) R 1 0 0 0 -1 4194560 0 0 0 0 3 4" TAIL, "x", 1, 3, 4 },
        };
        static const char *const bad[] = {
                "",
                "\n",
                "37",
                "37 ksmd S 2 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 (ksmd S 2 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 )ksmd( S 2 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 (ksmd)",
                "37 (ksmd)\n",
                "37 (ksmd) S",
                "37 (ksmd) S\n",
                "37 (ksmd) S 2",
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7",
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7\n",
                "37 (ksmd) S x 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 (ksmd) S 2x 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 9x" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7.5 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 +7 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0x7 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 -" TAIL,
                "37 (ksmd) S 99999999999999999999 0 0 0 -1 2129984 0 0 0 0 7 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 18446744073709551616 9" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 99999999999999999999999" TAIL,
                "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7\n9" TAIL,
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ProcStat s = {};

                ck_assert_msg(proc_stat_parse(good[i].text, &s) == 0, "'%s'", good[i].text);
                ck_assert_msg(streq(s.comm, good[i].comm), "'%s': comm '%s'", good[i].text, s.comm);
                ck_assert_msg(s.ppid == good[i].ppid, "'%s': ppid %" PRIi64, good[i].text, s.ppid);
                ck_assert_msg(s.utime == good[i].utime && s.stime == good[i].stime,
                              "'%s': utime %" PRIu64 " stime %" PRIu64, good[i].text, s.utime, s.stime);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_bad(bad[i]);
}
END_TEST

/*
 * utime and stime are unsigned in the kernel (printed with %llu): a negative one makes no stat line,
 * but strtoull() turns "-7" into 2^64 - 7 without an error.
 */
START_TEST(test_parse_negative_times) {
        check_bad("37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 -7 9" TAIL);
        check_bad("37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7 -9" TAIL);
}
END_TEST

/* Fake /proc trees. */
static void put(const char *rel, const char *content) {
        fake_put(&t, rel, "%s", content);
}

static void put_stat(const char *dir, const char *pid, const char *comm, int ppid, uint64_t utime, uint64_t stime) {
        char rel[PATH_MAX], line[512];

        snprintf(rel, sizeof(rel), "%s/%s/stat", dir, pid);
        snprintf(line, sizeof(line), "%s (%s) S %d 0 0 0 -1 %s 0 0 0 0 %" PRIu64 " %" PRIu64 TAIL, pid, comm, ppid,
                 ppid == 2 ? "2129984" : "4194560", utime, stime);
        put(rel, line);
}

static const char *path_of(const char *rel) {
        static char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", t.root, rel);
        return path;
}

/* A /proc with what readdir() meets on a real one besides PIDs: self, sys, files, odd names. */
static void make_proc(const char *dir) {
        char rel[PATH_MAX];

        put_stat(dir, "1", "systemd", 0, 500, 700);
        put_stat(dir, "2", "kthreadd", 0, 0, 0);
        put_stat(dir, "12", "ksmd", 1, 9000, 9000); /* a user process that calls itself ksmd */
        put_stat(dir, "100", "a) b (c) S 2 0", 1, 1, 1);
        snprintf(rel, sizeof(rel), "%s/meminfo", dir);
        put(rel, "MemTotal: 1000 kB\n");
        snprintf(rel, sizeof(rel), "%s/self/stat", dir);
        put(rel, "1 (systemd) S 0 0 0 0 -1 4194560 0 0 0 0 1 1" TAIL);
        snprintf(rel, sizeof(rel), "%s/sys/stat", dir);
        put(rel, "");
        snprintf(rel, sizeof(rel), "%s/123abc/stat", dir);
        put(rel, "123 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 1 1" TAIL);
        snprintf(rel, sizeof(rel), "%s/0/stat", dir);
        put(rel, "0 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 1 1" TAIL);
        snprintf(rel, sizeof(rel), "%s/200/stat", dir);
        put(rel, "garbage\n");
        snprintf(rel, sizeof(rel), "%s/300/status", dir); /* a PID directory without stat */
        put(rel, "Name: ksmd\n");
}

START_TEST(test_find) {
        pid_t pid = 4242;

        make_proc("proc");
        put_stat("proc", "37", "ksmd", 2, 2, 16);
        ck_assert_int_eq(ksmd_find(path_of("proc"), &pid), 0);
        ck_assert_int_eq(pid, 37);

        /* A kernel thread with another name, or a user ksmd, is not it. */
        make_proc("other");
        put_stat("other", "37", "kswapd0", 2, 2, 16);
        pid = 4242;
        ck_assert_int_eq(ksmd_find(path_of("other"), &pid), -ESRCH);
        ck_assert_int_eq(pid, 4242);
}
END_TEST

START_TEST(test_find_user_ksmd) {
        pid_t pid = 4242;

        /* Only the user process named ksmd (parent: init), as in a container that hides kernel threads. */
        put_stat("proc", "1", "systemd", 0, 1, 1);
        put_stat("proc", "12", "ksmd", 1, 9000, 9000);
        /* A name that a parser stopping at the first ')' would read as ksmd, child of kthreadd. */
        put_stat("proc", "13", "ksmd) S 2 0", 1, 9000, 9000);
        ck_assert_int_eq(ksmd_find(path_of("proc"), &pid), -ESRCH);
        ck_assert_int_eq(pid, 4242);

        /* With the kernel thread there too, wherever readdir() meets it, that is the one found. */
        put_stat("proc", "4000", "ksmd", 2, 5, 6);
        ck_assert_int_eq(ksmd_find(path_of("proc"), &pid), 0);
        ck_assert_int_eq(pid, 4000);
}
END_TEST

START_TEST(test_find_errors) {
        pid_t pid = 4242;

        ck_assert_int_eq(mkdir(path_of("empty"), 0755), 0);
        ck_assert_int_eq(ksmd_find(path_of("empty"), &pid), -ESRCH);
        ck_assert_int_eq(ksmd_find(path_of("missing"), &pid), -ENOENT);
        put("file", "x\n");
        ck_assert_int_eq(ksmd_find(path_of("file"), &pid), -ENOTDIR);
        ck_assert_int_eq(pid, 4242);
}
END_TEST

START_TEST(test_cpu_ticks) {
        uint64_t ticks = 42;

        make_proc("proc");
        put_stat("proc", "37", "ksmd", 2, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ticks(path_of("proc"), 37, &ticks), 0);
        ck_assert_uint_eq(ticks, 18);

        /* Time moves on. */
        put_stat("proc", "37", "ksmd", 2, 1000, 234567);
        ck_assert_int_eq(ksmd_cpu_ticks(path_of("proc"), 37, &ticks), 0);
        ck_assert_uint_eq(ticks, 235567);

        /* Another process now (see test_cpu_ns_reused() for the other ways). */
        put_stat("proc", "37", "bash", 1, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ticks(path_of("proc"), 37, &ticks), -ESRCH);
        ck_assert_uint_eq(ticks, 235567);
}
END_TEST

/* Without schedstat: utime + stime, in clock ticks, as ns. */
START_TEST(test_cpu_ns_ticks) {
        uint64_t tick = UINT64_C(1000000000) / (uint64_t) sysconf(_SC_CLK_TCK), ns = 42;
        bool precise = true;

        make_proc("proc");
        put_stat("proc", "37", "ksmd", 2, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), 0);
        ck_assert_uint_eq(ns, 18 * tick);
        ck_assert(!precise);

        /* Time moves on. */
        put_stat("proc", "37", "ksmd", 2, 1000, 234567);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), 0);
        ck_assert_uint_eq(ns, 235567 * tick);

        /* A schedstat that is not a number followed by a space is not read. */
        put("proc/37/schedstat", "x 1 2\n");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), 0);
        ck_assert_uint_eq(ns, 235567 * tick);
        put("proc/37/schedstat", "123456789\n");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), 0);
        ck_assert_uint_eq(ns, 235567 * tick);
        ck_assert(!precise);
}
END_TEST

/* With schedstat: its first field, the time on a CPU in ns, whatever stat's ticks say. */
START_TEST(test_cpu_ns_schedstat) {
        uint64_t ns = 42;
        bool precise = false;

        make_proc("proc");
        put_stat("proc", "37", "ksmd", 2, 2, 16);
        put("proc/37/schedstat", "5575261353179 566511762257 954445\n");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), 0);
        ck_assert_uint_eq(ns, UINT64_C(5575261353179));
        ck_assert(precise);

        /* Still checked to be ksmd first. */
        put_stat("proc", "37", "bash", 1, 2, 16);
        ns = 42;
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), -ESRCH);
        ck_assert_uint_eq(ns, 42);
}
END_TEST

START_TEST(test_cpu_ns_reused) {
        uint64_t ns = 42;
        bool precise;

        make_proc("proc");
        /* The PID now belongs to another process ... */
        put_stat("proc", "37", "bash", 1, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), -ESRCH);
        /* ... to a user process that calls itself ksmd ... */
        put_stat("proc", "37", "ksmd", 1, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), -ESRCH);
        /* ... to another kernel thread ... */
        put_stat("proc", "37", "kswapd0", 2, 2, 16);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), -ESRCH);
        /* ... or to nothing. */
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 38, &ns, &precise), -ESRCH);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 300, &ns, &precise), -ESRCH); /* a directory without stat */
        ck_assert_uint_eq(ns, 42);
}
END_TEST

START_TEST(test_cpu_ns_errors) {
        uint64_t ns = 42;
        bool precise;

        make_proc("proc");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("missing"), 37, &ns, &precise), -ENOENT);
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 200, &ns, &precise), -EBADMSG);
        put("proc/37/stat", "37 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 7");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("proc"), 37, &ns, &precise), -EBADMSG);
        put("file", "x\n");
        ck_assert_int_eq(ksmd_cpu_ns(path_of("file"), 37, &ns, &precise), -ENOTDIR);
        ck_assert_uint_eq(ns, 42);
}
END_TEST

/* This machine's /proc: ksmd, where there is one, is a kernel thread named ksmd, and its time only grows. */
START_TEST(test_real_proc) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int dfd = -1;
        uint64_t t1, t2;
        bool precise;
        char name[32];
        ProcStat s;
        pid_t pid;
        int r;

        r = ksmd_find("/proc", &pid);
        if (r == -ESRCH)
                return; /* no KSM in this kernel, or a container */
        ck_assert_int_eq(r, 0);
        ck_assert_int_gt(pid, 2);
        dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dfd, 0);
        snprintf(name, sizeof(name), "%d/stat", (int) pid);
        ck_assert_int_eq(read_full_file_at(dfd, name, 4096, &text, NULL), 0);
        ck_assert_int_eq(proc_stat_parse(text, &s), 0);
        ck_assert_str_eq(s.comm, "ksmd");
        ck_assert_int_eq(s.ppid, 2);
        ck_assert_int_eq(ksmd_cpu_ns("/proc", pid, &t1, &precise), 0);
        /* stat's ticks are the same time, cut to whole ticks, read a moment before. */
        ck_assert_uint_ge(t1, (s.utime + s.stime) * (UINT64_C(1000000000) / (uint64_t) sysconf(_SC_CLK_TCK)));
        snprintf(name, sizeof(name), "/proc/%d/schedstat", (int) pid);
        ck_assert(precise == (access(name, R_OK) == 0));
        ck_assert_int_eq(ksmd_cpu_ns("/proc", pid, &t2, &precise), 0);
        ck_assert_uint_ge(t2, t1);
        ck_assert_int_eq(ksmd_cpu_ns("/proc", getpid(), &t1, &precise), -ESRCH); /* this test is no ksmd */
        ck_assert_int_eq(ksmd_cpu_ns("/proc", 1, &t1, &precise), -ESRCH);
}
END_TEST

static Suite *ksmd_suite(void) {
        Suite *s = suite_create("ksmd");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_fixtures);
        tcase_add_test(tc, test_parse_bad_fixtures);
        tcase_add_test(tc, test_parse_strings);
        tcase_add_test(tc, test_parse_negative_times);
        suite_add_tcase(s, tc);

        tc = tcase_create("proc");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_find);
        tcase_add_test(tc, test_find_user_ksmd);
        tcase_add_test(tc, test_find_errors);
        tcase_add_test(tc, test_cpu_ticks);
        tcase_add_test(tc, test_cpu_ns_ticks);
        tcase_add_test(tc, test_cpu_ns_schedstat);
        tcase_add_test(tc, test_cpu_ns_reused);
        tcase_add_test(tc, test_cpu_ns_errors);
        tcase_add_test(tc, test_real_proc);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ksmd_suite());
}
