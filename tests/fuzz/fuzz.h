/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every fuzz target shares: the libFuzzer entry point and a check that aborts on a broken promise. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parser broke its contract: abort, so that libFuzzer saves the input and the replay test fails. */
#define FUZZ_CHECK(expr)                                                                                               \
        do {                                                                                                           \
                if (!(expr)) {                                                                                         \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);                       \
                        abort();                                                                                       \
                }                                                                                                      \
        } while (0)

/* The input as a C string, cut at its first NUL as a reader's buffer would be. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        FUZZ_CHECK(s);
        if (size > 0)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}
