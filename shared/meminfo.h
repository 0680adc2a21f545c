/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/meminfo: a pure parser and a reader that takes the /proc directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* All figures in kB, as the kernel prints them. */
typedef struct MemInfo {
        uint64_t mem_total;
        uint64_t mem_free;
        uint64_t mem_available;
        uint64_t buffers;
        uint64_t cached;
        bool has_mem_available; /* kernels before 3.14 lack it */
} MemInfo;

int meminfo_parse(const char *text, MemInfo *ret);
int meminfo_read(const char *proc_dir, MemInfo *ret);
