/* SPDX-License-Identifier: GPL-2.0-or-later */
/* latch.h: a persisting failure is news once, another errno is news again, and so is the recovery. */
#include "latch.h"
#include "unit.h"

START_TEST(test_latch) {
        Latch l = {};

        ck_assert(!latch_ok(&l)); /* working, and it was: nothing to say */
        ck_assert(latch_fail(&l, -EACCES));
        ck_assert(!latch_fail(&l, -EACCES));
        ck_assert(latch_fail(&l, -EIO));
        ck_assert_int_eq(l.error, -EIO);
        ck_assert(latch_ok(&l));
        ck_assert(!latch_ok(&l));
        ck_assert(latch_fail(&l, -EIO));
}
END_TEST

int main(void) {
        Suite *s = suite_create("latch");
        TCase *tc = tcase_create("latch");

        tcase_add_test(tc, test_latch);
        suite_add_tcase(s, tc);
        return unit_run(s);
}
