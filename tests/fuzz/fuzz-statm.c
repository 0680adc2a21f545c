/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: statm_parse_rss_kb(), the /proc/PID/statm parser of the guest scan. */
#include <errno.h>

#include "fuzz.h"
#include "guests.h"

#define SENTINEL UINT64_C(0xdeadbeefcafe)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const long bad_sizes[] = { 0, -1, -4096 };
        uint64_t k1 = SENTINEL, k4 = SENTINEL, k64 = SENTINEL, again = SENTINEL, bad = SENTINEL;
        char *text = fuzz_strndup(data, size);
        int r1, r4, r64;

        /* With 1 kB pages the result is the page count itself, which the other sizes must scale. */
        r1 = statm_parse_rss_kb(text, 1024, &k1);
        r4 = statm_parse_rss_kb(text, 4096, &k4);
        r64 = statm_parse_rss_kb(text, 65536, &k64);
        FUZZ_CHECK(r1 == 0 || r1 == -EBADMSG);
        FUZZ_CHECK(r4 == 0 || r4 == -EBADMSG);
        FUZZ_CHECK(r64 == 0 || r64 == -EBADMSG);
        if (r1 < 0) {
                /* Malformed text fails whatever the page size; failure leaves the result untouched. */
                FUZZ_CHECK(r4 < 0 && r64 < 0);
                FUZZ_CHECK(k1 == SENTINEL && k4 == SENTINEL && k64 == SENTINEL);
        } else {
                /* A larger page can only fail by overflow, and then every larger one fails too. */
                FUZZ_CHECK(r4 < 0 || k4 == k1 * 4);
                FUZZ_CHECK(r64 < 0 || (r4 == 0 && k64 == k1 * 64));
                FUZZ_CHECK(statm_parse_rss_kb(text, 4096, &again) == r4 && (r4 < 0 || again == k4));
        }
        for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
                FUZZ_CHECK(statm_parse_rss_kb(text, bad_sizes[i], &bad) == -EBADMSG && bad == SENTINEL);
        free(text);
        return 0;
}
