/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: meminfo_parse(), the /proc/meminfo parser. */
#include <errno.h>

#include "fuzz.h"
#include "meminfo.h"

/* Field by field: padding is not copied by assignment, so memcmp() would see garbage. */
static bool same(const MemInfo *a, const MemInfo *b) {
        return a->mem_total == b->mem_total && a->mem_free == b->mem_free && a->mem_available == b->mem_available &&
               a->buffers == b->buffers && a->cached == b->cached && a->has_mem_available == b->has_mem_available;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const MemInfo sentinel = { 1, 2, 3, 4, 5, true };
        MemInfo a = sentinel, b = sentinel;
        char *text = fuzz_strndup(data, size);
        int r1, r2;

        r1 = meminfo_parse(text, &a);
        r2 = meminfo_parse(text, &b);
        FUZZ_CHECK(r1 == 0 || r1 == -EBADMSG || r1 == -ENODATA);
        FUZZ_CHECK(r1 == r2 && same(&a, &b));
        if (r1 == 0) {
                /* Every formula divides by MemTotal. */
                FUZZ_CHECK(a.mem_total > 0);
                FUZZ_CHECK(a.has_mem_available || a.mem_available == 0);
        } else
                FUZZ_CHECK(same(&a, &sentinel)); /* untouched on failure */
        free(text);
        return 0;
}
