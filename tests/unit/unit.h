/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every unit test shares: running its check suite, and reading fixture files. */
#pragma once

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* $FIXTURES (meson test sets it), else the source tree this test was built from. */
static inline const char *unit_fixtures(void) {
        const char *dir = getenv("FIXTURES");

        return dir && *dir ? dir : FIXTURES_DIR;
}

/* The contents of tests/fixtures/SUBDIR/NAME, NUL-terminated; the test fails when it cannot be read. */
static inline char *unit_fixture(const char *subdir, const char *name, size_t *ret_size) {
        _cleanup_close_ int dfd = -1;
        char path[PATH_MAX];
        char *text = NULL;

        snprintf(path, sizeof(path), "%s/%s", unit_fixtures(), subdir);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_msg(dfd >= 0, "cannot open %s: %m", path);
        ck_assert_msg(read_full_file_at(dfd, name, 1 << 20, &text, ret_size) == 0, "cannot read %s/%s", path, name);
        return text;
}

static inline int unit_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* Make the directory @templ names (its last six characters "XXXXXX", replaced), for one test. */
static inline void unit_tmpdir_make(char *templ) {
        ck_assert_ptr_nonnull(mkdtemp(templ));
}

/* Remove it and all it holds, and restore the template for the next test. */
static inline void unit_tmpdir_remove(char *templ) {
        nftw(templ, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        strcpy(templ + strlen(templ) - 6, "XXXXXX");
}

/* Run the suite; the exit status is the result (meson's exitcode protocol). */
static inline int unit_run(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
