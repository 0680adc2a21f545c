/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of shared/ksm-sysfs and its integer parsing, against a temporary directory. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "ksm-sysfs.h"
#include "util.h"

#include "fake-tree.h"

static FakeTree t;
static int dfd = -1;

static void setup(void) {
        fake_tree_new_ksm(&t, "ksm-sysfs", &dfd);
}

static void teardown(void) {
        fake_tree_free_ksm(&t, &dfd);
}

static void put(const char *name, const char *content) {
        fake_knob(&t, name, content);
}

/* The file's whole content, for checking what a write left there. */
static char *get(const char *name) {
        char *s = NULL;

        ck_assert_int_eq(read_full_file_at(dfd, name, 1 << 20, &s, NULL), 0);
        return s;
}

START_TEST(test_open_dir) {
        int fd = -1;
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/missing", t.ksm);
        ck_assert_int_eq(ksm_open_dir(path, &fd), -ENOENT);
        ck_assert_int_eq(fd, -1);
        put("file", "1\n");
        snprintf(path, sizeof(path), "%s/file", t.ksm);
        ck_assert_int_eq(ksm_open_dir(path, &fd), -ENOTDIR);
        ck_assert_int_eq(fd, -1);
}
END_TEST

START_TEST(test_has) {
        put("run", "0\n");
        ck_assert(ksm_has(dfd, "run"));
        ck_assert(!ksm_has(dfd, "max_kernel_pages"));
}
END_TEST

START_TEST(test_read_u64) {
        uint64_t v = 42;

        put("run", "1\n");
        ck_assert_int_eq(ksm_read_u64(dfd, "run", &v), 0);
        ck_assert_uint_eq(v, 1);

        put("pages_to_scan", "100");
        ck_assert_int_eq(ksm_read_u64(dfd, "pages_to_scan", &v), 0);
        ck_assert_uint_eq(v, 100);

        put("big", "18446744073709551615\n");
        ck_assert_int_eq(ksm_read_u64(dfd, "big", &v), 0);
        ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_read_u64_bad) {
        static const char *const bad[] = {
                "",
                "\n",
                "abc\n",
                "12abc\n",
                "-5\n",
                "+5\n",
                "1 2\n",
                "0x10\n",
                "18446744073709551616\n",
                "[none] scan-time\n",
        };
        uint64_t v = 42;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                put("knob", bad[i]);
                ck_assert_msg(ksm_read_u64(dfd, "knob", &v) == -EBADMSG, "'%s' was not -EBADMSG", bad[i]);
                ck_assert_uint_eq(v, 42); /* untouched on failure */
        }
}
END_TEST

START_TEST(test_read_missing) {
        uint64_t v = 42;
        char *s = NULL;

        ck_assert_int_eq(ksm_read_u64(dfd, "run", &v), -ENOENT);
        ck_assert_uint_eq(v, 42);
        ck_assert_int_eq(ksm_read_string(dfd, "run", &s), -ENOENT);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_read_directory) {
        uint64_t v = 42;

        ck_assert_int_eq(mkdirat(dfd, "run", 0755), 0);
        ck_assert_int_eq(ksm_read_u64(dfd, "run", &v), -EISDIR);
}
END_TEST

START_TEST(test_read_string) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        put("advisor_mode", "[none] scan-time\n");
        ck_assert_int_eq(ksm_read_string(dfd, "advisor_mode", &a), 0);
        ck_assert_str_eq(a, "[none] scan-time");

        put("empty", "");
        ck_assert_int_eq(ksm_read_string(dfd, "empty", &b), 0);
        ck_assert_str_eq(b, "");

        put("spaces", "x \n\n");
        ck_assert_int_eq(ksm_read_string(dfd, "spaces", &c), 0);
        ck_assert_str_eq(c, "x");
}
END_TEST

START_TEST(test_read_string_size_limit) {
        char buf[4098];
        char *s = NULL;

        /* A knob is one short line: 4096 bytes are still read, anything longer is refused. */
        memset(buf, '7', sizeof(buf));
        buf[4096] = '\0';
        put("knob", buf);
        ck_assert_int_eq(ksm_read_string(dfd, "knob", &s), 0);
        ck_assert_uint_eq(strlen(s), 4096);
        free(s);
        s = NULL;

        buf[4096] = '7';
        buf[4097] = '\0';
        put("knob", buf);
        ck_assert_int_eq(ksm_read_string(dfd, "knob", &s), -EFBIG);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_write) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        put("run", "0\n");
        ck_assert_int_eq(ksm_write_u64(dfd, "run", 1), 0);
        a = get("run");
        ck_assert_str_eq(a, "1\n");

        /* A shorter value replaces a longer one completely. */
        put("pages_to_scan", "12345\n");
        ck_assert_int_eq(ksm_write_u64(dfd, "pages_to_scan", 7), 0);
        b = get("pages_to_scan");
        ck_assert_str_eq(b, "7\n");

        put("advisor_mode", "[none] scan-time\n");
        ck_assert_int_eq(ksm_write_string(dfd, "advisor_mode", "scan-time"), 0);
        c = get("advisor_mode");
        ck_assert_str_eq(c, "scan-time\n");
}
END_TEST

START_TEST(test_write_u64_max) {
        _cleanup_free_ char *a = NULL;

        put("knob", "0\n");
        ck_assert_int_eq(ksm_write_u64(dfd, "knob", UINT64_MAX), 0);
        a = get("knob");
        ck_assert_str_eq(a, "18446744073709551615\n");
}
END_TEST

START_TEST(test_write_missing) {
        /* A missing knob means an older kernel: never create it. */
        ck_assert_int_eq(ksm_write_u64(dfd, "run", 1), -ENOENT);
        ck_assert(!ksm_has(dfd, "run"));
        ck_assert_int_eq(ksm_write_string(dfd, "advisor_mode", "none"), -ENOENT);
        ck_assert(!ksm_has(dfd, "advisor_mode"));
}
END_TEST

START_TEST(test_write_unwritable) {
        /* Root writes any mode, so a directory in the knob's place stands in for an unwritable knob. */
        ck_assert_int_eq(mkdirat(dfd, "run", 0755), 0);
        ck_assert_int_eq(ksm_write_u64(dfd, "run", 1), -EISDIR);
        ck_assert_int_eq(ksm_update_u64(dfd, "run", 1), -EISDIR);
}
END_TEST

START_TEST(test_write_full_device) {
        /* The kernel refuses a value through write(); /dev/full makes every write fail. */
        ck_assert_int_eq(symlinkat("/dev/full", dfd, "run"), 0);
        ck_assert_int_eq(ksm_write_u64(dfd, "run", 1), -ENOSPC);
}
END_TEST

START_TEST(test_write_too_long) {
        char buf[200];

        put("knob", "0\n");
        memset(buf, 'x', sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = '\0';
        ck_assert_int_eq(ksm_write_string(dfd, "knob", buf), -EINVAL);
}
END_TEST

START_TEST(test_update) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct stat st;

        /* Unchanged: 0, and the file is not written at all (its old mtime stays). */
        put("sleep_millisecs", "20\n");
        ck_assert_int_eq(utimensat(dfd, "sleep_millisecs", (const struct timespec[2]) { { 1, 0 }, { 1, 0 } }, 0), 0);
        ck_assert_int_eq(ksm_update_u64(dfd, "sleep_millisecs", 20), 0);
        ck_assert_int_eq(fstatat(dfd, "sleep_millisecs", &st, 0), 0);
        ck_assert_int_eq(st.st_mtim.tv_sec, 1);
        ck_assert_int_eq(st.st_size, 3);

        /* Changed: 1. */
        ck_assert_int_eq(ksm_update_u64(dfd, "sleep_millisecs", 10), 1);
        a = get("sleep_millisecs");
        ck_assert_str_eq(a, "10\n");

        /* Unreadable current value: overwritten. */
        put("pages_to_scan", "garbage\n");
        ck_assert_int_eq(ksm_update_u64(dfd, "pages_to_scan", 64), 1);
        b = get("pages_to_scan");
        ck_assert_str_eq(b, "64\n");

        ck_assert_int_eq(ksm_update_u64(dfd, "missing", 1), -ENOENT);
        ck_assert(!ksm_has(dfd, "missing"));
}
END_TEST

START_TEST(test_parse_choice) {
        static const struct {
                const char *text;
                const char *word; /* NULL: -EBADMSG */
        } cases[] = {
                { "[none] scan-time", "none" },
                { "none [scan-time]", "scan-time" },
                { "[always] madvise never", "always" },
                { "[x]", "x" },
                { "none scan-time", NULL },
                { "", NULL },
                { "[]", NULL },
                { "[none", NULL },
                { "none]", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *w = NULL;
                int r = ksm_parse_choice(cases[i].text, &w);

                if (cases[i].word) {
                        ck_assert_msg(r == 0, "'%s': %d", cases[i].text, r);
                        ck_assert_str_eq(w, cases[i].word);
                } else {
                        ck_assert_msg(r == -EBADMSG, "'%s': %d", cases[i].text, r);
                        ck_assert_ptr_null(w);
                }
                free(w);
        }
}
END_TEST

START_TEST(test_safe_ato) {
        uint64_t u = 7;
        int64_t i = 7;

        ck_assert_int_eq(safe_atou64(" 12\n", &u), 0);
        ck_assert_uint_eq(u, 12);
        ck_assert_int_eq(safe_atou64("-1", &u), -EINVAL);
        ck_assert_int_eq(safe_atou64("", &u), -EINVAL);
        ck_assert_int_eq(safe_atou64("18446744073709551616", &u), -ERANGE);
        ck_assert_uint_eq(u, 12);

        /* general_profit is signed. */
        ck_assert_int_eq(safe_atoi64("-123456\n", &i), 0);
        ck_assert_int_eq(i, -123456);
        ck_assert_int_eq(safe_atoi64("+5", &i), 0);
        ck_assert_int_eq(i, 5);
        ck_assert_int_eq(safe_atoi64("-", &i), -EINVAL);
        ck_assert_int_eq(safe_atoi64("5x", &i), -EINVAL);
        ck_assert_int_eq(safe_atoi64("9223372036854775808", &i), -ERANGE);
        ck_assert_int_eq(safe_atoi64("-9223372036854775808", &i), 0);
        ck_assert_int_eq(i, INT64_MIN);
}
END_TEST

static Suite *ksm_sysfs_suite(void) {
        Suite *s = suite_create("ksm-sysfs");
        TCase *tc = tcase_create("knobs");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_open_dir);
        tcase_add_test(tc, test_has);
        tcase_add_test(tc, test_read_u64);
        tcase_add_test(tc, test_read_u64_bad);
        tcase_add_test(tc, test_read_missing);
        tcase_add_test(tc, test_read_directory);
        tcase_add_test(tc, test_read_string);
        tcase_add_test(tc, test_read_string_size_limit);
        tcase_add_test(tc, test_write);
        tcase_add_test(tc, test_write_u64_max);
        tcase_add_test(tc, test_write_missing);
        tcase_add_test(tc, test_write_unwritable);
        tcase_add_test(tc, test_write_full_device);
        tcase_add_test(tc, test_write_too_long);
        tcase_add_test(tc, test_update);
        suite_add_tcase(s, tc);

        tc = tcase_create("parsing");
        tcase_add_test(tc, test_parse_choice);
        tcase_add_test(tc, test_safe_ato);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ksm_sysfs_suite());
}
