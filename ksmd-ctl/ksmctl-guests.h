/* SPDX-License-Identifier: GPL-2.0-or-later */
/* "ksmctl guests": the guest processes' KSM figures as a table or JSON, with totals beside KSM's own. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "guest-info.h"
#include "ksmctl-ops.h"

/* The columns added up over the guests that report each figure. */
typedef struct GuestSums {
        unsigned guests;
        uint64_t rss_bytes;
        bool has_merged, has_zero, has_profit, has_saved;
        uint64_t merged_bytes, zero_bytes, saved_bytes;
        int64_t profit_bytes;
} GuestSums;

void ksmctl_guest_sums(const GuestList *l, uint64_t page_size, GuestSums *ret);
int ksmctl_format_bytes(char *buf, size_t size, int64_t bytes);
int ksmctl_guests_print(const GuestList *l, const KsmStatus *ksm, uint64_t page_size, FILE *f);
int ksmctl_guests_print_json(const GuestList *l, const KsmStatus *ksm, uint64_t page_size, FILE *f);
