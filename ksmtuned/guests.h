/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One pass over a /proc tree: which processes are guests, and how much memory they hold. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct GuestMatcher {
        bool have_comm, have_cmdline;
        regex_t comm;    /* on /proc/PID/comm */
        regex_t cmdline; /* on /proc/PID/cmdline, arguments joined by spaces as pgrep -f does */
} GuestMatcher;

typedef struct GuestTotals {
        uint64_t rss_kb;      /* the committed figure, as the scan's source counts it */
        uint64_t resident_kb; /* their RSS (statm), whatever the source */
        unsigned count;
        uint64_t merged_kb; /* the guests' pages merged by KSM (rss-minus-merged only) */
        unsigned fallbacks; /* guests whose pss or merged pages were unreadable: counted by RSS */
} GuestTotals;

int guest_matcher_init(GuestMatcher *m, const char *comm_re, const char *cmdline_re, char *errbuf, size_t errlen);
void guest_matcher_done(GuestMatcher *m);
/* Called for each guest process by guests_foreach(); a negative return stops the pass. */
typedef int (*GuestVisit)(int procfd, const char *pid, uint64_t rss_kb, void *userdata);

int guests_foreach(const char *proc_dir, const GuestMatcher *m, GuestVisit visit, void *userdata);
void guests_count(int procfd, const char *pid, uint64_t rss_kb, int source, GuestTotals *t);

/* The size of a buffer for a process name from /proc/PID/comm (the kernel's TASK_COMM_LEN is 16). */
#define GUEST_COMM_MAX 64
int guest_read_comm(int procfd, const char *pid, char *ret);
int guests_scan(const char *proc_dir, const GuestMatcher *m, int source, GuestTotals *ret);
int statm_parse_rss_kb(const char *text, long page_size, uint64_t *ret);
int smaps_rollup_parse_pss(const char *text, uint64_t *ret);
int ksm_stat_parse_merging(const char *text, uint64_t *ret);
