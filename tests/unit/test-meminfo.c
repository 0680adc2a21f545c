/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of shared/meminfo: the parser on fixture files and strings, the reader on temporary /proc trees. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <sys/stat.h>

#include "meminfo.h"
#include "util.h"

#include "unit.h"

static char *fixture_text(const char *name) {
        return unit_fixture("meminfo", name, NULL);
}

static int parse_fixture(const char *name, MemInfo *ret) {
        _cleanup_free_ char *text = fixture_text(name);

        return meminfo_parse(text, ret);
}

START_TEST(test_host) {
        MemInfo m = {};

        ck_assert_int_eq(parse_fixture("host-6.18.meminfo", &m), 0);
        ck_assert_uint_eq(m.mem_total, 24731708);
        ck_assert_uint_eq(m.mem_free, 23317584);
        ck_assert(m.has_mem_available);
        ck_assert_uint_eq(m.mem_available, 24400120);
        ck_assert_uint_eq(m.buffers, 48584);
        ck_assert_uint_eq(m.cached, 1216072);
}
END_TEST

START_TEST(test_old_kernel) {
        MemInfo m = {};

        /* 2.6.32 (RHEL 6's kernel) has no MemAvailable. */
        ck_assert_int_eq(parse_fixture("linux-2.6.32.meminfo", &m), 0);
        ck_assert_uint_eq(m.mem_total, 8061508);
        ck_assert_uint_eq(m.mem_free, 5203204);
        ck_assert(!m.has_mem_available);
        ck_assert_uint_eq(m.mem_available, 0);
        ck_assert_uint_eq(m.buffers, 210732);
        ck_assert_uint_eq(m.cached, 1794632);
}
END_TEST

START_TEST(test_swapcached_first) {
        MemInfo m = {};

        ck_assert_int_eq(parse_fixture("swapcached-first.meminfo", &m), 0);
        ck_assert_uint_eq(m.cached, 1216072);
}
END_TEST

START_TEST(test_bad_fixtures) {
        /* Only MemTotal is needed: every formula divides by it. */
        static const struct {
                const char *name;
                int r;
        } bad[] = {
                { "no-memtotal.meminfo", -ENODATA },
                { "memtotal-zero.meminfo", -EBADMSG },
                { "overflow.meminfo", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = fixture_text(bad[i].name);
                MemInfo m = { .mem_total = 42 };
                const char *field = NULL;
                char why[96];

                ck_assert_msg(meminfo_parse_full(text, &field, &m) == bad[i].r, "%s", bad[i].name);
                ck_assert_uint_eq(m.mem_total, 42); /* untouched on failure */
                ck_assert_str_eq(field, "MemTotal");
                ck_assert_str_eq(meminfo_strerror(bad[i].r, field, why, sizeof(why)),
                                 bad[i].r == -ENODATA ? "no MemTotal line" : "MemTotal is not a positive number of kB");
        }
}
END_TEST

/* As some container views of /proc and kernels write it: a field other than MemTotal missing or malformed
 * counts as 0, and says which. */
START_TEST(test_lenient_fixtures) {
        static const struct {
                const char *name;
                unsigned missing, malformed;
                uint64_t free, buffers, cached;
                bool has_available;
        } cases[] = {
                { "no-buffers.meminfo", 1u << MEMINFO_BUFFERS, 0, 23317584, 0, 1216072, true },
                { "swapcached-no-cached.meminfo", 1u << MEMINFO_CACHED, 0, 23317584, 48584, 0, true },
                { "truncated.meminfo", 0, 1u << MEMINFO_CACHED, 23317584, 48584, 0, true },
                { "malformed-number.meminfo", 0, 1u << MEMINFO_MEM_FREE, 0, 48584, 1216072, true },
                { "memtotal-only.meminfo",
                  (1u << MEMINFO_MEM_FREE) | (1u << MEMINFO_MEM_AVAILABLE) | (1u << MEMINFO_BUFFERS) |
                          (1u << MEMINFO_CACHED),
                  0, 0, 0, 0, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MemInfo m = {};

                ck_assert_msg(parse_fixture(cases[i].name, &m) == 0, "%s", cases[i].name);
                ck_assert_uint_eq(m.mem_total, 24731708);
                ck_assert_msg(m.missing == cases[i].missing, "%s: missing %#x", cases[i].name, m.missing);
                ck_assert_msg(m.malformed == cases[i].malformed, "%s: malformed %#x", cases[i].name, m.malformed);
                ck_assert_uint_eq(m.mem_free, cases[i].free);
                ck_assert_uint_eq(m.buffers, cases[i].buffers);
                ck_assert_uint_eq(m.cached, cases[i].cached);
                ck_assert(m.has_mem_available == cases[i].has_available);
        }
        ck_assert_str_eq(meminfo_field_name(MEMINFO_BUFFERS), "Buffers");
        ck_assert_ptr_null(meminfo_field_name(_MEMINFO_FIELD_MAX));
}
END_TEST

START_TEST(test_strings) {
        static const struct {
                const char *text;
                int r;
                uint64_t total, free, cached;
                unsigned missing, malformed;
        } cases[] = {
                { "MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\nCached: 2 kB\n", 0, 100, 50, 2, 0x4, 0 },
                /* No trailing newline, tabs, no unit. */
                { "MemTotal:\t100\nMemFree:\t50 kB\nBuffers: 1 kB\nCached: 2 kB", 0, 100, 50, 2, 0x4, 0 },
                /* Order does not matter; the first of a duplicated field wins. */
                { "Cached: 2 kB\nBuffers: 1 kB\nMemFree: 50 kB\nMemTotal: 100 kB\nMemTotal: 7 kB\n", 0, 100, 50, 2, 0x4,
                  0 },
                /* The largest value fits. */
                { "MemTotal: 18446744073709551615 kB\nMemFree: 0 kB\nBuffers: 0 kB\nCached: 0 kB\n", 0, UINT64_MAX, 0,
                  0, 0x4, 0 },
                { "", -ENODATA, 0, 0, 0, 0, 0 },
                { "MemFree: 50 kB\n", -ENODATA, 0, 0, 0, 0, 0 },
                { "MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\n", 0, 100, 50, 0, 0x14, 0 },
                { "MemTotal: 100 kB\nMemFree: -50 kB\nBuffers: 1 kB\nCached: 2 kB\n", 0, 100, 0, 2, 0x4, 0x2 },
                { "MemTotal: 100 MB\nMemFree: 50 kB\nBuffers: 1 kB\nCached: 2 kB\n", -EBADMSG, 0, 0, 0, 0, 0 },
                { "MemTotal: 100 kB junk\nMemFree: 50 kB\nBuffers: 1 kB\nCached: 2 kB\n", -EBADMSG, 0, 0, 0, 0, 0 },
                { "MemTotal: kB\nMemFree: 50 kB\nBuffers: 1 kB\nCached: 2 kB\n", -EBADMSG, 0, 0, 0, 0, 0 },
                { "MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\nCached: 99999999999999999999 kB\n", 0, 100, 50, 0,
                  0x4, 0x10 },
                /* A field name must start the line, and end at its colon. */
                { "MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\n Cached: 2 kB\n", 0, 100, 50, 0, 0x14, 0 },
                { "MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\nSwapCached: 2 kB\n", 0, 100, 50, 0, 0x14, 0 },
                { "MemTotal: 100 kB\nMemFreeX: 50 kB\nBuffers: 1 kB\nCached: 2 kB\n", 0, 100, 0, 2, 0x6, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MemInfo m = {};
                int r = meminfo_parse(cases[i].text, &m);

                ck_assert_msg(r == cases[i].r, "case %zu: %d, expected %d", i, r, cases[i].r);
                if (r < 0)
                        continue;
                ck_assert_uint_eq(m.mem_total, cases[i].total);
                ck_assert_uint_eq(m.mem_free, cases[i].free);
                ck_assert_uint_eq(m.cached, cases[i].cached);
                ck_assert_msg(m.missing == cases[i].missing, "case %zu: missing %#x", i, m.missing);
                ck_assert_msg(m.malformed == cases[i].malformed, "case %zu: malformed %#x", i, m.malformed);
                ck_assert(!m.has_mem_available);
        }
}
END_TEST

static char tmpdir[] = "/tmp/test-meminfo.XXXXXX";

static void setup(void) {
        unit_tmpdir_make(tmpdir);
}

static void teardown(void) {
        unit_tmpdir_remove(tmpdir);
}

static void put_meminfo(const char *text, size_t n) {
        char path[PATH_MAX];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof(path), "%s/meminfo", tmpdir);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(text, 1, n, f), n);
}

START_TEST(test_read) {
        _cleanup_free_ char *text = fixture_text("host-6.18.meminfo");
        MemInfo m = {};

        put_meminfo(text, strlen(text));
        ck_assert_int_eq(meminfo_read(tmpdir, &m), 0);
        ck_assert_uint_eq(m.mem_total, 24731708);
        ck_assert_uint_eq(m.mem_available, 24400120);
}
END_TEST

START_TEST(test_read_real) {
        MemInfo m = {};

        ck_assert_int_eq(meminfo_read("/proc", &m), 0);
        ck_assert_uint_gt(m.mem_total, 0);
        ck_assert(m.has_mem_available);
        ck_assert_uint_le(m.mem_free, m.mem_total);
}
END_TEST

START_TEST(test_read_missing) {
        char path[PATH_MAX];
        MemInfo m = {};

        ck_assert_int_eq(meminfo_read(tmpdir, &m), -ENOENT);
        ck_assert_str_eq(meminfo_strerror(-ENOENT, NULL, path, sizeof(path)), "No such file or directory");
        snprintf(path, sizeof(path), "%s/nonexistent", tmpdir);
        ck_assert_int_eq(meminfo_read(path, &m), -ENOENT);
}
END_TEST

START_TEST(test_read_huge) {
        /* A file far larger than any real meminfo is refused rather than read without bound. */
        size_t n = 128 * 1024;
        _cleanup_free_ char *text = malloc(n);
        MemInfo m = {};

        ck_assert_ptr_nonnull(text);
        memset(text, 'x', n);
        memcpy(text, "MemTotal: 1 kB\nMemFree: 1 kB\nBuffers: 1 kB\nCached: 1 kB\n", 57);
        put_meminfo(text, n);
        ck_assert_int_eq(meminfo_read(tmpdir, &m), -EFBIG);
}
END_TEST

static Suite *meminfo_suite(void) {
        Suite *s = suite_create("meminfo");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_host);
        tcase_add_test(tc, test_old_kernel);
        tcase_add_test(tc, test_swapcached_first);
        tcase_add_test(tc, test_bad_fixtures);
        tcase_add_test(tc, test_lenient_fixtures);
        tcase_add_test(tc, test_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("read");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_read);
        tcase_add_test(tc, test_read_real);
        tcase_add_test(tc, test_read_missing);
        tcase_add_test(tc, test_read_huge);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(meminfo_suite());
}
