/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-guest series of the metrics file: one set per guest name, a bounded number of guests. */
#pragma once

#include <stdint.h>

#include "guest-info.h"

/* At most this many guest names get series; the rest are counted in ksmtuned_guests_unlisted. */
#define GUEST_METRICS_MAX 256
/* Series per guest name: processes, resident, merged, zero-page, profit, mergeable. */
#define GUEST_METRICS_SERIES 6

int guest_metrics_format(const GuestList *l, uint64_t page_size, char **ret);
int guest_metrics_append(const GuestList *l, uint64_t page_size, char **text);
