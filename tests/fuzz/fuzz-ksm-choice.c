/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: ksm_parse_choice(), the parser of sysfs choices such as advisor_mode's "[none] scan-time". */
#include <errno.h>

#include "fuzz.h"
#include "ksm-sysfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size), *a = NULL, *b = NULL;
        int r1, r2;

        r1 = ksm_parse_choice(text, &a);
        r2 = ksm_parse_choice(text, &b);
        FUZZ_CHECK(r1 == 0 || r1 == -EBADMSG);
        FUZZ_CHECK(r1 == r2);
        if (r1 == 0) {
                const char *open = strchr(text, '[');
                size_t n = strlen(a);

                /* The word between the first '[' and the ']' after it: non-empty, no ']' in it. */
                FUZZ_CHECK(a && b && strcmp(a, b) == 0);
                FUZZ_CHECK(open && n > 0 && !strchr(a, ']'));
                FUZZ_CHECK(strncmp(open + 1, a, n) == 0 && open[n + 1] == ']');
        } else
                FUZZ_CHECK(!a && !b); /* untouched on failure */
        free(a);
        free(b);
        free(text);
        return 0;
}
