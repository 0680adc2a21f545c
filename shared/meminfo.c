/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/meminfo parsing: only the fields the tuning policy and ksmctl need. */
#include <ctype.h>
#include <fcntl.h>
#include <stddef.h>

#include "meminfo.h"
#include "util.h"

/* The real file is ~1.5 kB; this bounds what a broken or hostile file can make us read. */
#define MEMINFO_MAX (64 * 1024)

/* Parse "   12345 kB" (the unit optional); -EBADMSG on anything else. */
static int parse_kb(const char *p, const char *eol, uint64_t *ret) {
        uint64_t v = 0;
        bool digits = false;

        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        while (p < eol && isdigit((unsigned char) *p)) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
                digits = true;
                p++;
        }
        if (!digits)
                return -EBADMSG;
        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        if (p < eol && eol - p == 2 && p[0] == 'k' && p[1] == 'B')
                p += 2;
        if (p != eol)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static const char *const field_names[_MEMINFO_FIELD_MAX] = {
        [MEMINFO_MEM_TOTAL] = "MemTotal", [MEMINFO_MEM_FREE] = "MemFree", [MEMINFO_MEM_AVAILABLE] = "MemAvailable",
        [MEMINFO_BUFFERS] = "Buffers",    [MEMINFO_CACHED] = "Cached",
};

/**
 * meminfo_field_name() - the kernel's name of a MEMINFO_* field ("MemTotal"), or NULL when out of range.
 */
const char *meminfo_field_name(unsigned field) {
        return field < _MEMINFO_FIELD_MAX ? field_names[field] : NULL;
}

/**
 * meminfo_parse_full() - pick MemTotal, MemFree, MemAvailable, Buffers and Cached out of meminfo text.
 * @ret_field: when not NULL and MemTotal is what failed, set to "MemTotal" (also on failure)
 *
 * Only lines that start with one of those names count (so "SwapCached:" is not "Cached:"), as in the
 * original script's awk; the first of a repeated line wins. Only MemTotal is required, since every formula
 * divides by it: -ENODATA when it is missing, -EBADMSG when it is not a number of kB or is 0. Any other
 * field that is missing or malformed counts as 0 (as awk's empty variables did in the original) and is
 * flagged in MemInfo.missing or MemInfo.malformed, so the caller can say so; MemAvailable that is not there
 * also leaves has_mem_available false (kernels before 3.14).
 */
int meminfo_parse_full(const char *text, const char **ret_field, MemInfo *ret) {
        static const size_t offsets[_MEMINFO_FIELD_MAX] = {
                [MEMINFO_MEM_TOTAL] = offsetof(MemInfo, mem_total),
                [MEMINFO_MEM_FREE] = offsetof(MemInfo, mem_free),
                [MEMINFO_MEM_AVAILABLE] = offsetof(MemInfo, mem_available),
                [MEMINFO_BUFFERS] = offsetof(MemInfo, buffers),
                [MEMINFO_CACHED] = offsetof(MemInfo, cached),
        };
        MemInfo m = {};
        unsigned seen = 0;
        const char *line = text;

        while (*line) {
                const char *eol = strchrnul(line, '\n');

                for (unsigned i = 0; i < _MEMINFO_FIELD_MAX; i++) {
                        size_t n = strlen(field_names[i]);
                        uint64_t *v = (uint64_t *) ((char *) &m + offsets[i]);

                        if ((size_t) (eol - line) <= n || memcmp(line, field_names[i], n) != 0 || line[n] != ':')
                                continue;
                        if (seen & (1u << i))
                                break; /* awk would print both; the first is the kernel's */
                        seen |= 1u << i;
                        if (parse_kb(line + n + 1, eol, v) < 0) {
                                *v = 0;
                                m.malformed |= 1u << i;
                        }
                        break;
                }
                line = *eol ? eol + 1 : eol;
        }

        m.missing = ((1u << _MEMINFO_FIELD_MAX) - 1) & ~seen;
        if (m.missing & (1u << MEMINFO_MEM_TOTAL) || m.malformed & (1u << MEMINFO_MEM_TOTAL) || m.mem_total == 0) {
                if (ret_field)
                        *ret_field = field_names[MEMINFO_MEM_TOTAL];
                return m.missing & (1u << MEMINFO_MEM_TOTAL) ? -ENODATA : -EBADMSG;
        }
        m.has_mem_available = !((m.missing | m.malformed) & (1u << MEMINFO_MEM_AVAILABLE));
        *ret = m;
        return 0;
}

/**
 * meminfo_parse() - meminfo_parse_full() without naming the field that failed.
 */
int meminfo_parse(const char *text, MemInfo *ret) {
        return meminfo_parse_full(text, NULL, ret);
}

/**
 * meminfo_read_full() - read and parse @proc_dir/meminfo; errors as open(2)/read(2) and meminfo_parse_full().
 */
int meminfo_read_full(const char *proc_dir, const char **ret_field, MemInfo *ret) {
        _cleanup_close_ int dfd = -1;
        _cleanup_free_ char *text = NULL;
        int r;

        dfd = open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        r = read_full_file_at(dfd, "meminfo", MEMINFO_MAX, &text, NULL);
        if (r < 0)
                return r;
        return meminfo_parse_full(text, ret_field, ret);
}

/**
 * meminfo_read() - meminfo_read_full() without naming the field that failed.
 */
int meminfo_read(const char *proc_dir, MemInfo *ret) {
        return meminfo_read_full(proc_dir, NULL, ret);
}

/**
 * meminfo_strerror() - words for an error of meminfo_read_full(), to follow "Failed to read FILE: ".
 * @field: what meminfo_read_full() put in its @ret_field, or NULL
 *
 * Returns a string in @buf (or a static one): "no MemTotal line", "MemTotal is not a positive number of
 * kB", or strerror() for the errors of open(2) and read(2).
 */
const char *meminfo_strerror(int r, const char *field, char *buf, size_t size) {
        if (r == -ENODATA)
                snprintf(buf, size, "no %s line", field ?: "MemTotal");
        else if (r == -EBADMSG)
                snprintf(buf, size, "%s is not a positive number of kB", field ?: "MemTotal");
        else
                return strerror(-r);
        return buf;
}
