/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Timing decisions as pure functions of a clock value: event coalescing and reconnection back-off. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "trigger.h"

/* Guest events waiting for their adjustment; times in µs on any monotonic clock. */
typedef struct Pending {
        bool armed;
        uint64_t due;
        unsigned count;  /* events since the last adjustment */
        Trigger trigger; /* the first event's */
        char first[96];  /* the first event's reason, shown with "+N more" */
} Pending;

bool pending_add(Pending *p, uint64_t now, uint64_t settle, Trigger trigger, const char *reason);
void pending_reason(const Pending *p, char *buf, size_t size);
void pending_clear(Pending *p);

/* Capped exponential back-off for reconnection attempts. */
typedef struct Backoff {
        uint64_t min, max; /* µs */
        uint64_t next;     /* the delay the next failure gets; 0 before the first */
        unsigned failures;
} Backoff;

void backoff_init(Backoff *b, uint64_t min, uint64_t max);
uint64_t backoff_fail(Backoff *b);
void backoff_reset(Backoff *b);
