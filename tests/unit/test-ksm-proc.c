/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-process KSM figures: ksm_stat of every kernel generation, smaps' mg flag, the QEMU command line. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ksm-proc.h"

#include "unit.h"

static KsmProcStat parse_fixture(const char *name, int want) {
        _cleanup_free_ char *text = unit_fixture("ksm-stat", name, NULL);
        KsmProcStat s = { .rmap_items = 4242 };

        ck_assert_msg(ksm_proc_stat_parse(text, &s) == want, "%s", name);
        return s;
}

START_TEST(test_stat_full) {
        KsmProcStat s = parse_fixture("full.ksm_stat", 0);

        ck_assert(s.has_rmap_items && s.has_zero_pages && s.has_merging_pages && s.has_profit);
        ck_assert(s.has_merge_any && s.has_mergeable);
        ck_assert_uint_eq(s.rmap_items, 16400);
        ck_assert_uint_eq(s.zero_pages, 12);
        ck_assert_uint_eq(s.merging_pages, 16384);
        ck_assert_int_eq(s.profit, 66108416);
        ck_assert(!s.merge_any);
        ck_assert(s.mergeable);
}
END_TEST

START_TEST(test_stat_older_kernels) {
        KsmProcStat s;

        s = parse_fixture("rmap-only.ksm_stat", 0);
        ck_assert(s.has_rmap_items);
        ck_assert_uint_eq(s.rmap_items, 2048);
        ck_assert(!s.has_merging_pages && !s.has_zero_pages && !s.has_profit && !s.has_mergeable && !s.has_merge_any);

        s = parse_fixture("no-zero-pages.ksm_stat", 0);
        ck_assert(s.has_merging_pages && s.has_profit && !s.has_zero_pages && !s.has_mergeable);
        ck_assert_uint_eq(s.merging_pages, 100);
        ck_assert_int_eq(s.profit, -16384);

        s = parse_fixture("merge-any.ksm_stat", 0);
        ck_assert(s.has_merge_any && s.merge_any && s.has_mergeable && !s.mergeable);

        s = parse_fixture("unknown-line.ksm_stat", 0);
        ck_assert_uint_eq(s.rmap_items, 3);
        ck_assert_uint_eq(s.merging_pages, 2);

        ck_assert_int_eq(ksm_proc_stat_parse("", &s), 0);
        ck_assert(!s.has_rmap_items && !s.has_merging_pages);
}
END_TEST

START_TEST(test_stat_malformed) {
        KsmProcStat s = { .rmap_items = 4242 };

        parse_fixture("malformed-number.ksm_stat", -EBADMSG);
        parse_fixture("malformed-yes-no.ksm_stat", -EBADMSG);
        parse_fixture("overflow.ksm_stat", -EBADMSG);
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_process_profit 9223372036854775808\n", &s), -EBADMSG);
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_process_profit -9223372036854775808\n", &s), 0);
        ck_assert_int_eq(s.profit, INT64_MIN);
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_zero_pages -1\n", &s), -EBADMSG);
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_zero_pages\n", &s), -EBADMSG);
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_zero_pages 1 2\n", &s), -EBADMSG);
        /* A failed parse leaves the output alone. */
        s.rmap_items = 4242;
        ck_assert_int_eq(ksm_proc_stat_parse("ksm_rmap_items 1\nksm_mergeable: perhaps\n", &s), -EBADMSG);
        ck_assert_uint_eq(s.rmap_items, 4242);
}
END_TEST

static char root[] = "/tmp/ksmtuned-test-ksm-proc-XXXXXX";

static void setup(void) {
        unit_tmpdir_make(root);
}

static void teardown(void) {
        unit_tmpdir_remove(root);
}

static void put_file(const char *pid, const char *name, const char *text) {
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", root, pid);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%s/%s", root, pid, name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
}

static void put_fixture(const char *pid, const char *name, const char *fixture) {
        _cleanup_free_ char *text = unit_fixture("ksm-stat", fixture, NULL);

        put_file(pid, name, text);
}

START_TEST(test_stat_read_generations) {
        _cleanup_close_ int procfd = -1;
        KsmProcStat s;

        put_fixture("10", "ksm_stat", "full.ksm_stat");
        put_file("10", "ksm_merging_pages", "1\n"); /* not read: ksm_stat has the line */
        put_fixture("11", "ksm_stat", "rmap-only.ksm_stat");
        put_fixture("11", "ksm_merging_pages", "merging-pages-only");
        put_fixture("12", "ksm_merging_pages", "merging-pages-only");
        put_file("13", "comm", "qemu-kvm\n");
        put_file("14", "ksm_merging_pages", "twelve\n");
        put_fixture("15", "ksm_stat", "malformed-number.ksm_stat");
        procfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(procfd, 0);

        ck_assert_int_eq(ksm_proc_stat_read(procfd, "10", &s), 0);
        ck_assert_uint_eq(s.merging_pages, 16384);
        ck_assert(s.has_mergeable && s.mergeable);

        /* 6.1 to 6.3: rmap items from ksm_stat, merged pages from their own file. */
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "11", &s), 0);
        ck_assert(s.has_rmap_items && s.has_merging_pages && !s.has_profit && !s.has_mergeable);
        ck_assert_uint_eq(s.rmap_items, 2048);
        ck_assert_uint_eq(s.merging_pages, 512);

        /* 5.19 and 6.0: the merged pages only. */
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "12", &s), 0);
        ck_assert(s.has_merging_pages && !s.has_rmap_items && !s.has_zero_pages && !s.has_profit);
        ck_assert_uint_eq(s.merging_pages, 512);

        /* Before 5.19: nothing; and a process that is gone. */
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "13", &s), -ENOENT);
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "99", &s), -ENOENT);
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "14", &s), -EBADMSG);
        ck_assert_int_eq(ksm_proc_stat_read(procfd, "15", &s), -EBADMSG);
}
END_TEST

START_TEST(test_smaps) {
        _cleanup_free_ char *yes = unit_fixture("ksm-stat", "mergeable.smaps", NULL);
        _cleanup_free_ char *no = unit_fixture("ksm-stat", "not-mergeable.smaps", NULL);
        _cleanup_free_ char *none = unit_fixture("ksm-stat", "no-vmflags.smaps", NULL);
        _cleanup_close_ int procfd = -1;
        bool b = false;

        ck_assert_int_eq(ksm_proc_smaps_mergeable(yes, &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ksm_proc_smaps_mergeable(no, &b), 0); /* "mgx" is not "mg" */
        ck_assert(!b);
        b = true;
        ck_assert_int_eq(ksm_proc_smaps_mergeable(none, &b), -EBADMSG);
        ck_assert(b);
        ck_assert_int_eq(ksm_proc_smaps_mergeable("VmFlags: mg", &b), 0);
        ck_assert(b);

        put_file("20", "smaps", yes);
        procfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_eq(ksm_proc_smaps_read(procfd, "20", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ksm_proc_smaps_read(procfd, "21", &b), -ENOENT);
}
END_TEST

/* Command lines as /proc/PID/cmdline holds them: arguments separated by NUL, sizeof() counting the last. */
#define ARGS(s) s, sizeof(s)

static const struct {
        const char *args;
        size_t size;
        const char *name; /* NULL: none */
} name_cases[] = {
        { ARGS("/usr/bin/qemu-system-x86_64\0-name\0guest=web1,debug-threads=on\0-S\0"), "web1" },
        { ARGS("qemu\0-name\0guest=a,,b,debug-threads=on\0"), "a,b" },
        { ARGS("qemu\0-name\0debug-threads=on,guest=late\0"), "late" },
        { ARGS("qemu\0-name\0plain\0"), "plain" },
        { ARGS("qemu\0-name\0plain,process=qemu-plain\0"), "plain" },
        { ARGS("qemu\0--name\0dashes\0"), "dashes" },
        { ARGS("qemu\0-name=eq\0"), "eq" },
        { ARGS("qemu\0-name\0process=only\0"), NULL },
        { ARGS("qemu\0-name\0"), NULL },
        { ARGS("qemu\0-name\0\0"), NULL },
        { ARGS("qemu\0-m\0001024\0"), NULL },
        { ARGS("qemu\0-name\0guest=\0-name\0second\0"), "second" },
        { "", 0, NULL },
};

START_TEST(test_cmdline_name) {
        _cleanup_free_ char *name = NULL;
        int r = ksm_proc_cmdline_name(name_cases[_i].args, name_cases[_i].size, &name);

        if (name_cases[_i].name) {
                ck_assert_int_eq(r, 0);
                ck_assert_str_eq(name, name_cases[_i].name);
        } else
                ck_assert_int_eq(r, -ENODATA);
}
END_TEST

START_TEST(test_cmdline_name_long) {
        char args[600] = "qemu";
        _cleanup_free_ char *name = NULL;
        size_t n = 5;

        memcpy(args + n, "-name", 6);
        n += 6;
        memset(args + n, 'x', 400);
        n += 400;
        args[n++] = '\0';
        ck_assert_int_eq(ksm_proc_cmdline_name(args, n, &name), 0);
        ck_assert_uint_eq(strlen(name), 256);
}
END_TEST

static const struct {
        const char *args;
        size_t size;
        KsmUnmergeable want;
} reason_cases[] = {
        { ARGS("qemu\0-machine\0pc,accel=kvm,mem-merge=off\0"), KSM_UNMERGEABLE_MEM_MERGE_OFF },
        { ARGS("qemu\0-name\0guest=db,debug-threads=on\0-machine\0pc-i440fx-7.2,usb=off,mem-merge=off\0"),
          KSM_UNMERGEABLE_NOSHAREPAGES },
        { ARGS("qemu\0-name\0guest=db\0-object\0{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"merge\":false}"
               "\0"),
          KSM_UNMERGEABLE_NOSHAREPAGES },
        { ARGS("qemu\0-object\0memory-backend-ram,id=m0,size=1G,merge=off\0"), KSM_UNMERGEABLE_MEM_MERGE_OFF },
        { ARGS("qemu\0-machine\0pc,mem-merge=on\0"), KSM_UNMERGEABLE_NOT_MARKED },
        { ARGS("qemu\0-object\0{\"qom-type\":\"memory-backend-file\",\"mem-path\":\"/dev/hugepages/libvirt/qemu\"}\0"),
          KSM_UNMERGEABLE_HUGEPAGES },
        { ARGS("qemu\0-object\0memory-backend-memfd,id=m,hugetlb=on,size=1G\0"), KSM_UNMERGEABLE_HUGEPAGES },
        { ARGS("qemu\0-m\0001024\0"), KSM_UNMERGEABLE_NOT_MARKED },
        { "", 0, KSM_UNMERGEABLE_NOT_MARKED },
};

START_TEST(test_cmdline_reason) {
        KsmUnmergeable r = ksm_proc_cmdline_unmergeable(reason_cases[_i].args, reason_cases[_i].size);

        ck_assert_msg(r == reason_cases[_i].want, "case %d: %s", _i, ksm_unmergeable_label(r));
}
END_TEST

START_TEST(test_reason_words) {
        ck_assert_ptr_nonnull(strstr(ksm_unmergeable_to_string(KSM_UNMERGEABLE_NOSHAREPAGES), "<nosharepages/>"));
        ck_assert_ptr_nonnull(strstr(ksm_unmergeable_to_string(KSM_UNMERGEABLE_MEM_MERGE_OFF), "mem-merge=off"));
        ck_assert_ptr_nonnull(strstr(ksm_unmergeable_to_string(KSM_UNMERGEABLE_HUGEPAGES), "huge pages"));
        ck_assert_ptr_nonnull(strstr(ksm_unmergeable_to_string(KSM_UNMERGEABLE_NOT_MARKED), "not marked mergeable"));
        ck_assert_str_eq(ksm_unmergeable_label(KSM_UNMERGEABLE_NOSHAREPAGES), "nosharepages");
        ck_assert_str_eq(ksm_unmergeable_label(_KSM_UNMERGEABLE_MAX), "not-marked");
}
END_TEST

START_TEST(test_name_sanitize) {
        char ascii[] = "web-1 \"x\"", utf8[] = "gäst-€-\xf0\x9f\x90\xa7",
             bad[] = "a\xff"
                     "b\xc3"
                     "c\xc0\xaf"
                     "d\xe2\x82";

        ksm_proc_name_sanitize(ascii);
        ck_assert_str_eq(ascii, "web-1 \"x\"");
        ksm_proc_name_sanitize(utf8);
        ck_assert_str_eq(utf8, "gäst-€-\xf0\x9f\x90\xa7");
        ksm_proc_name_sanitize(bad);
        ck_assert_str_eq(bad, "a?b?c??d??");
}
END_TEST

static Suite *ksm_proc_suite(void) {
        Suite *s = suite_create("ksm-proc");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_stat_full);
        tcase_add_test(tc, test_stat_older_kernels);
        tcase_add_test(tc, test_stat_malformed);
        tcase_add_loop_test(tc, test_cmdline_name, 0, ELEMENTSOF(name_cases));
        tcase_add_test(tc, test_cmdline_name_long);
        tcase_add_loop_test(tc, test_cmdline_reason, 0, ELEMENTSOF(reason_cases));
        tcase_add_test(tc, test_reason_words);
        tcase_add_test(tc, test_name_sanitize);
        suite_add_tcase(s, tc);

        tc = tcase_create("read");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_stat_read_generations);
        tcase_add_test(tc, test_smaps);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ksm_proc_suite());
}
