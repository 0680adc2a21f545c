/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/meminfo: a pure parser and a reader that takes the /proc directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fields read, as bit numbers of MemInfo.missing and MemInfo.malformed. */
enum {
        MEMINFO_MEM_TOTAL,
        MEMINFO_MEM_FREE,
        MEMINFO_MEM_AVAILABLE,
        MEMINFO_BUFFERS,
        MEMINFO_CACHED,
        _MEMINFO_FIELD_MAX,
};

/* All figures in kB, as the kernel prints them. */
typedef struct MemInfo {
        uint64_t mem_total;
        uint64_t mem_free;
        uint64_t mem_available;
        uint64_t buffers;
        uint64_t cached;
        bool has_mem_available; /* kernels before 3.14 lack it */
        unsigned missing;       /* 1u << MEMINFO_*: no such line, counted as 0 */
        unsigned malformed;     /* 1u << MEMINFO_*: a line that is not a number of kB, counted as 0 */
} MemInfo;

const char *meminfo_field_name(unsigned field);
int meminfo_parse(const char *text, MemInfo *ret);
int meminfo_parse_full(const char *text, const char **ret_field, MemInfo *ret);
int meminfo_read(const char *proc_dir, MemInfo *ret);
int meminfo_read_full(const char *proc_dir, const char **ret_field, MemInfo *ret);
const char *meminfo_strerror(int r, const char *field, char *buf, size_t size);
