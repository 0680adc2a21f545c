/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the daemon says about a /proc/meminfo that lacks fields or has malformed ones. */
#pragma once

#include "meminfo.h"

void meminfo_report_fields(const char *proc_dir, const MemInfo *mi, unsigned *reported);
