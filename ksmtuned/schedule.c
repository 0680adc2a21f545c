/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Event coalescing and back-off: the timing logic of the event sources, kept free of any clock or loop. */
#include <stdio.h>
#include <string.h>

#include "schedule.h"

/**
 * pending_add() - note a guest event at @now; the adjustment is due @settle µs after the first one.
 *
 * The adjustment carries the first event's @trigger and @reason (text for the log).
 *
 * Later events join the adjustment already due and never postpone it, so a steady stream of events
 * cannot hold adjustments off. Returns true when the caller must arm its timer for p->due (the first
 * event since the last adjustment), false when one is already armed.
 */
bool pending_add(Pending *p, uint64_t now, uint64_t settle, Trigger trigger, const char *reason) {
        p->count++;
        if (p->armed)
                return false;
        p->armed = true;
        p->trigger = trigger;
        p->due = now > UINT64_MAX - settle ? UINT64_MAX : now + settle;
        snprintf(p->first, sizeof(p->first), "%s", reason);
        return true;
}

/**
 * pending_reason() - what the coming adjustment is for: "REASON" or "REASON (+N more)".
 */
void pending_reason(const Pending *p, char *buf, size_t size) {
        if (p->count > 1)
                snprintf(buf, size, "%s (+%u more)", p->first, p->count - 1);
        else
                snprintf(buf, size, "%s", p->first);
}

void pending_clear(Pending *p) {
        *p = (Pending) {};
}

void backoff_init(Backoff *b, uint64_t min, uint64_t max) {
        *b = (Backoff) { .min = min, .max = max < min ? min : max };
}

/**
 * backoff_fail() - one more failed attempt: how long to wait before the next one.
 *
 * @min after the first failure, doubling after each further one, never more than @max.
 */
uint64_t backoff_fail(Backoff *b) {
        uint64_t d = b->next ? b->next : b->min;

        b->failures++;
        b->next = d > b->max / 2 ? b->max : d * 2;
        return d;
}

/* A success: the next failure starts again from the minimum. */
void backoff_reset(Backoff *b) {
        b->next = 0;
        b->failures = 0;
}
