/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Each guest process with its name, memory and KSM figures: what "ksmctl guests" and the metrics show. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guests.h"
#include "ksm-proc.h"

typedef struct GuestInfo {
        int pid;
        char *name;            /* libvirt's domain name (-name guest=NAME), else the process name */
        bool named;            /* @name came from the command line */
        uint64_t rss_bytes;    /* resident set size, bytes */
        int ksm_error;         /* 0; else why @ksm is empty: -ENOENT kernel lacks the files, -EACCES ... */
        KsmProcStat ksm;       /* the kernel's figures, each with its has_ flag */
        int mergeable;         /* 1 mergeable, 0 not, -1 unknown */
        KsmUnmergeable reason; /* why not, when @mergeable is 0 */
} GuestInfo;

typedef struct GuestList {
        GuestInfo *guests;
        size_t n;
} GuestList;

/* guest_list() flags. */
enum {
        /* Where ksm_stat lacks ksm_mergeable, read smaps' VmFlags: costly on large guests, so opt-in. */
        GUEST_LIST_SMAPS = 1 << 0,
};

int guest_list_scan(const char *proc_dir, const GuestMatcher *m, int source, unsigned flags, GuestTotals *ret_totals,
                    GuestList *ret);
int guest_list(const char *proc_dir, const GuestMatcher *m, unsigned flags, GuestList *ret);
void guest_list_done(GuestList *l);
void guest_list_sort(GuestList *l, uint64_t page_size);
bool guest_saved_bytes(const GuestInfo *g, uint64_t page_size, uint64_t *ret);
