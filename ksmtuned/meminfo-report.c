/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the daemon says about a /proc/meminfo that lacks fields or has malformed ones. */
#include "log.h"
#include "meminfo-report.h"

/**
 * meminfo_report_fields() - warn once about each field that counted as 0 in @mi.
 * @reported: 1u << MEMINFO_* of the fields already warned about; updated
 *
 * Some container views of /proc and some kernels leave lines out (Buffers, for one); like the original
 * script, such a field counts as 0. One warning per field while it stays missing or malformed, so the
 * journal says it once; a field that comes back is warned about again if it goes missing later.
 * MemAvailable missing is not a problem (kernels before 3.14); the policy says when it falls back.
 */
void meminfo_report_fields(const char *proc_dir, const MemInfo *mi, unsigned *reported) {
        unsigned bad = (mi->missing & ~(1u << MEMINFO_MEM_AVAILABLE)) | mi->malformed;

        for (unsigned f = 0; f < _MEMINFO_FIELD_MAX; f++) {
                unsigned bit = 1u << f;
                const char *name = meminfo_field_name(f);

                if (!(bad & bit) || (*reported & bit))
                        continue;
                if (mi->malformed & bit)
                        log_warning("%s/meminfo: %s is not a number of kB; counting %s as 0", proc_dir, name, name);
                else
                        log_warning("%s/meminfo has no %s line; counting %s as 0", proc_dir, name, name);
        }
        *reported = bad;
}
