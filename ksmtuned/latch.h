/* SPDX-License-Identifier: GPL-2.0-or-later */
/* "Log a failure once while it lasts, and log its end": the state of one such report. */
#pragma once

#include <stdbool.h>

typedef struct Latch {
        int error; /* the failure reported last (a negative errno), 0 while things work */
} Latch;

/* A failure @error (< 0): true when it is news to report, i.e. the first, or another errno. */
static inline bool latch_fail(Latch *l, int error) {
        bool news = l->error != error;

        l->error = error;
        return news;
}

/* A success: true when it ends a reported failure, i.e. the recovery is news to report. */
static inline bool latch_ok(Latch *l) {
        bool news = l->error != 0;

        l->error = 0;
        return news;
}
