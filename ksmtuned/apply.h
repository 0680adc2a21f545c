/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writing the knobs: a decision's at every adjustment, the configuration's at start and reload. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "latch.h"
#include "policy.h"

typedef struct Applier {
        int ksm_fd;          /* /sys/kernel/mm/ksm, opened; reopened by apply_check_dir() */
        const char *ksm_dir; /* its path, for apply_check_dir() and the messages */
        bool advisor_owns;   /* what the last adjustment found: the advisor sets pages_to_scan */
        Latch knob[_KNOB_MAX];
        bool unmerge_refusal_reported;
        bool told_state; /* a line at info has said whether KSM runs since start */

        /* What each adjusted knob was last written (or found to hold already), to notice someone else's. */
        bool have_written[_KNOB_ADJUSTED];
        uint64_t written[_KNOB_ADJUSTED];
        bool outside_reported[_KNOB_ADJUSTED]; /* outside[] was warned about: not again while it recurs */
        uint64_t outside[_KNOB_ADJUSTED];
} Applier;

/* What an adjustment's writes did. */
typedef struct ApplyResult {
        uint64_t run; /* what run holds now, as far as known */
        bool changed; /* a knob was written */
        bool failed;  /* a write failed (reported once while it lasts) */
} ApplyResult;

void apply_init(Applier *a, int ksm_fd, const char *ksm_dir);
bool apply_check_dir(Applier *a);
void apply_decision(Applier *a, const Settings *s, const Decision *d, const Snapshot *snap, ApplyResult *ret);
void apply_config(Applier *a, const Settings *s, const Snapshot *snap);
void apply_forget_config_errors(Applier *a);
