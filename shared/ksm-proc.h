/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One process's KSM figures (/proc/PID/ksm_stat and its predecessors) and what its command line says. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * /proc/PID/ksm_stat as far as this kernel has it. Linux 5.19 has only /proc/PID/ksm_merging_pages;
 * 6.1 adds ksm_stat with ksm_rmap_items; later kernels add ksm_merging_pages, ksm_process_profit,
 * ksm_zero_pages, ksm_merge_any and ksm_mergeable. A figure whose has_ flag is false is unknown, not 0.
 */
typedef struct KsmProcStat {
        bool has_rmap_items, has_merging_pages, has_zero_pages, has_profit, has_merge_any, has_mergeable;
        uint64_t rmap_items;    /* ksm_rmap_items: pages KSM tracks for the process */
        uint64_t merging_pages; /* ksm_merging_pages: its pages merged into KSM pages */
        uint64_t zero_pages;    /* ksm_zero_pages: its empty pages merged with the zero page */
        int64_t profit;         /* ksm_process_profit, bytes; negative when the rmap items cost more */
        bool merge_any;         /* ksm_merge_any: prctl(PR_SET_MEMORY_MERGE) is on */
        bool mergeable;         /* ksm_mergeable: some mapping is marked mergeable (VM_MERGEABLE) */
} KsmProcStat;

/* Why a process's memory cannot be merged, as far as its command line tells. */
typedef enum KsmUnmergeable {
        KSM_UNMERGEABLE_NOT_MARKED,    /* nothing marked it mergeable; no known cause on the command line */
        KSM_UNMERGEABLE_MEM_MERGE_OFF, /* QEMU -machine mem-merge=off (or a memory backend with merge=off) */
        KSM_UNMERGEABLE_NOSHAREPAGES,  /* the same, from libvirt's <memoryBacking><nosharepages/> */
        KSM_UNMERGEABLE_HUGEPAGES,     /* guest RAM on hugetlbfs, which KSM never merges */
        _KSM_UNMERGEABLE_MAX,
} KsmUnmergeable;

int ksm_proc_stat_parse(const char *text, KsmProcStat *ret);
int ksm_proc_stat_read(int procfd, const char *pid, KsmProcStat *ret);
int ksm_proc_smaps_mergeable(const char *text, bool *ret);
int ksm_proc_smaps_read(int procfd, const char *pid, bool *ret);

void ksm_proc_name_sanitize(char *s);
int ksm_proc_cmdline_name(const char *args, size_t size, char **ret);
KsmUnmergeable ksm_proc_cmdline_unmergeable(const char *args, size_t size);
const char *ksm_unmergeable_to_string(KsmUnmergeable r);
const char *ksm_unmergeable_label(KsmUnmergeable r);
