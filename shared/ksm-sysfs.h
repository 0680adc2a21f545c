/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading and writing the kernel's KSM knobs, relative to a directory laid out like /sys/kernel/mm/ksm. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Values of the "run" knob. */
enum {
        KSM_RUN_STOP = 0,
        KSM_RUN_MERGE = 1,
        KSM_RUN_UNMERGE = 2,
};

int ksm_open_dir(const char *path, int *ret_fd);
bool ksm_has(int dirfd, const char *knob);
int ksm_read_u64(int dirfd, const char *knob, uint64_t *ret);
int ksm_read_string(int dirfd, const char *knob, char **ret);
int ksm_write_u64(int dirfd, const char *knob, uint64_t value);
int ksm_write_string(int dirfd, const char *knob, const char *value);
int ksm_update_u64(int dirfd, const char *knob, uint64_t value);
int ksm_parse_choice(const char *text, char **ret);
