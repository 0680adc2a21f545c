/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The only place that names the kernel's absolute paths; everything else takes them as parameters. */
#pragma once

#define KSM_SYSFS_DIR "/sys/kernel/mm/ksm"
#define PROC_DIR      "/proc"
