/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading one process's KSM figures from /proc, and the name and KSM settings on its command line. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>

#include "ksm-proc.h"
#include "util.h"

/* /proc/PID/smaps of a large guest is long (one block per mapping); more than this is not read. */
#define SMAPS_MAX (64u * 1024 * 1024)
/* A guest name longer than this is cut: it becomes a table cell and a metric label. */
#define NAME_MAX_LEN 256

static const char *skip_blanks(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* "123" or "-123" up to the end of the line; -EBADMSG otherwise. */
static int parse_number(const char *p, bool sign, int64_t *ret_signed, uint64_t *ret) {
        bool negative = false, digits = false;
        uint64_t v = 0;

        if (sign && *p == '-') {
                negative = true;
                p++;
        }
        for (; isdigit((unsigned char) *p); p++) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
                digits = true;
        }
        p = skip_blanks(p);
        if (!digits || (*p != '\n' && *p != '\0'))
                return -EBADMSG;
        if (sign) {
                if (v > (uint64_t) INT64_MAX + (negative ? 1 : 0))
                        return -EBADMSG;
                *ret_signed = negative ? (int64_t) (0 - v) : (int64_t) v;
        } else
                *ret = v;
        return 0;
}

static int parse_yes_no(const char *p, bool *ret) {
        size_t n = strcspn(p, "\n");

        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        if (n == 3 && strncmp(p, "yes", 3) == 0)
                *ret = true;
        else if (n == 2 && strncmp(p, "no", 2) == 0)
                *ret = false;
        else
                return -EBADMSG;
        return 0;
}

/**
 * ksm_proc_stat_parse() - the figures of /proc/PID/ksm_stat text.
 * @text: lines "ksm_rmap_items N", "ksm_zero_pages N", "ksm_merging_pages N", "ksm_process_profit N"
 *        (bytes, may be negative), "ksm_merge_any: yes|no", "ksm_mergeable: yes|no", in any order and
 *        any subset, as kernels from 6.1 on print them; lines this code does not know are skipped.
 * @ret: the figures; each one the text lacks has its has_ flag false.
 *
 * Return: 0, or -EBADMSG when a known line holds no valid value (the line is not half taken).
 */
int ksm_proc_stat_parse(const char *text, KsmProcStat *ret) {
        KsmProcStat s = {};

        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                size_t n = strcspn(line, " \t:\n");
                const char *v = line + n;
                int64_t dummy;
                int r = 0;

                if (*v == ':')
                        v++;
                v = skip_blanks(v);
#define KEY(k) (n == strlen(k) && strncmp(line, k, n) == 0)
                if (KEY("ksm_rmap_items")) {
                        r = parse_number(v, false, &dummy, &s.rmap_items);
                        s.has_rmap_items = true;
                } else if (KEY("ksm_merging_pages")) {
                        r = parse_number(v, false, &dummy, &s.merging_pages);
                        s.has_merging_pages = true;
                } else if (KEY("ksm_zero_pages")) {
                        r = parse_number(v, false, &dummy, &s.zero_pages);
                        s.has_zero_pages = true;
                } else if (KEY("ksm_process_profit")) {
                        r = parse_number(v, true, &s.profit, NULL);
                        s.has_profit = true;
                } else if (KEY("ksm_merge_any")) {
                        r = parse_yes_no(v, &s.merge_any);
                        s.has_merge_any = true;
                } else if (KEY("ksm_mergeable")) {
                        r = parse_yes_no(v, &s.mergeable);
                        s.has_mergeable = true;
                }
#undef KEY
                if (r < 0)
                        return r;
        }
        *ret = s;
        return 0;
}

static int read_pid_file(int procfd, const char *pid, const char *name, size_t max, char **ret) {
        char path[NAME_MAX + 32];

        snprintf(path, sizeof(path), "%s/%s", pid, name);
        return read_full_file_at(procfd, path, max, ret, NULL);
}

/**
 * ksm_proc_stat_read() - one process's KSM figures.
 * @procfd: a directory laid out like /proc
 * @pid: the process's directory name in it
 * @ret: what this kernel reports; the rest has its has_ flag false
 *
 * Reads PID/ksm_stat, and PID/ksm_merging_pages where ksm_stat lacks that line or is not there (Linux
 * 5.19 to 6.0). Both are readable by the process's owner and root only.
 *
 * Return: 0; -ENOENT when the kernel has neither file (before 5.19) or the process is gone; -EACCES or
 * another -errno when unreadable; -EBADMSG on content that is not the kernel's format.
 */
int ksm_proc_stat_read(int procfd, const char *pid, KsmProcStat *ret) {
        _cleanup_free_ char *stat = NULL, *merging = NULL;
        KsmProcStat s = {};
        int r;

        r = read_pid_file(procfd, pid, "ksm_stat", 4096, &stat);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                r = ksm_proc_stat_parse(stat, &s);
                if (r < 0)
                        return r;
        }
        if (!s.has_merging_pages) {
                int64_t dummy;
                int q;

                q = read_pid_file(procfd, pid, "ksm_merging_pages", 64, &merging);
                if (q >= 0) {
                        q = parse_number(skip_blanks(merging), false, &dummy, &s.merging_pages);
                        if (q < 0)
                                return q;
                        s.has_merging_pages = true;
                } else if (q != -ENOENT)
                        return q;
                else if (!stat)
                        return -ENOENT;
        }
        *ret = s;
        return 0;
}

/**
 * ksm_proc_smaps_mergeable() - whether /proc/PID/smaps text has a mapping marked mergeable: a
 * "VmFlags:" line with the flag "mg" (VM_MERGEABLE), what ksm_stat's ksm_mergeable line reports.
 *
 * Return: 0 with @ret set; -EBADMSG when the text has no VmFlags line at all (kernels before 3.8, or
 * not smaps), so nothing can be told.
 */
int ksm_proc_smaps_mergeable(const char *text, bool *ret) {
        bool seen = false;

        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                const char *p;
                size_t end;

                if (strncmp(line, "VmFlags:", 8) != 0)
                        continue;
                seen = true;
                end = strcspn(line, "\n");
                for (p = line + 8; p < line + end;) {
                        size_t n;

                        p = skip_blanks(p);
                        n = strcspn(p, " \t\n");
                        if (n == 2 && p[0] == 'm' && p[1] == 'g') {
                                *ret = true;
                                return 0;
                        }
                        p += n;
                }
        }
        if (!seen)
                return -EBADMSG;
        *ret = false;
        return 0;
}

/**
 * ksm_proc_smaps_read() - ksm_proc_smaps_mergeable() of PID/smaps in @procfd. The kernel walks the
 * page tables of every mapping for smaps, so this costs more than ksm_stat: use it only where ksm_stat
 * lacks ksm_mergeable, and not on every adjustment. Return: as ksm_proc_smaps_mergeable(), or -errno.
 */
int ksm_proc_smaps_read(int procfd, const char *pid, bool *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_pid_file(procfd, pid, "smaps", SMAPS_MAX, &text);
        if (r < 0)
                return r;
        return ksm_proc_smaps_mergeable(text, ret);
}

/*
 * A copy of @size bytes of @args with a NUL after them: the last argument of /proc/PID/cmdline lacks its
 * NUL when the process rewrote its arguments or the read was cut short.
 */
static char *terminated(const char *args, size_t size) {
        char *copy = malloc(size + 1);

        if (copy) {
                if (size > 0)
                        memcpy(copy, args, size);
                copy[size] = '\0';
        }
        return copy;
}

/* The next argument of a NUL-separated command line, or NULL at its end. */
static const char *next_arg(const char *args, size_t size, const char *a) {
        const char *end = args + size;

        if (!a)
                return size > 0 ? args : NULL;
        a += strnlen(a, (size_t) (end - a)) + 1;
        return a < end ? a : NULL;
}

/* The value of QEMU's -name option: "NAME[,...]" or "guest=NAME,...", ",," standing for a comma. */
static int name_value(const char *opt, char **ret) {
        char *out, *o;
        const char *p = opt;
        bool first = true;

        out = malloc(strlen(opt) + 1);
        if (!out)
                return -ENOMEM;
        while (*p) {
                const char *key = p;
                bool is_guest;

                /* key=value, or at the start a bare value that is the guest's name. */
                size_t klen = strcspn(p, "=,");
                if (p[klen] == '=') {
                        is_guest = klen == 5 && strncmp(key, "guest", 5) == 0;
                        p += klen + 1;
                } else
                        is_guest = first;
                o = out;
                for (; *p; p++) {
                        if (*p == ',') {
                                if (p[1] != ',')
                                        break;
                                p++;
                        }
                        *o++ = *p;
                }
                *o = '\0';
                if (is_guest && o > out) {
                        if (o - out > NAME_MAX_LEN)
                                out[NAME_MAX_LEN] = '\0';
                        *ret = out;
                        return 0;
                }
                if (*p == ',')
                        p++;
                first = false;
        }
        free(out);
        return -ENODATA;
}

/**
 * ksm_proc_cmdline_name() - the guest's name from a QEMU command line: the value of "-name guest=NAME"
 * as libvirt writes it, or of "-name NAME" (commas written ",,"), cut to 256 bytes.
 * @args: the command line as /proc/PID/cmdline has it, arguments separated by NUL
 * @size: its length in bytes
 * @ret: the name, to free()
 *
 * Return: 0; -ENODATA when the command line names no guest; -ENOMEM.
 */
int ksm_proc_cmdline_name(const char *args, size_t size, char **ret) {
        _cleanup_free_ char *copy = terminated(args, size);

        if (!copy)
                return -ENOMEM;
        args = copy;
        for (const char *a = next_arg(args, size, NULL); a; a = next_arg(args, size, a)) {
                const char *v = NULL, *n;

                if (streq(a, "-name") || streq(a, "--name")) {
                        n = next_arg(args, size, a);
                        if (!n)
                                break;
                        v = n;
                } else if (strncmp(a, "-name=", 6) == 0)
                        v = a + 6;
                if (v && name_value(v, ret) == 0)
                        return 0;
        }
        return -ENODATA;
}

static bool contains(const char *haystack, const char *needle) {
        return strstr(haystack, needle) != NULL;
}

/**
 * ksm_proc_cmdline_unmergeable() - the likely reason, from a QEMU command line (NUL-separated, @size
 * bytes), why the process's memory is not marked mergeable: mem-merge=off on -machine (or merge=off,
 * "merge":false on a memory backend), which libvirt writes for <memoryBacking><nosharepages/>; guest
 * RAM on hugetlbfs (libvirt's <hugepages/>); else KSM_UNMERGEABLE_NOT_MARKED.
 */
KsmUnmergeable ksm_proc_cmdline_unmergeable(const char *args, size_t size) {
        _cleanup_free_ char *copy = terminated(args, size);
        bool merge_off = false, hugepages = false, libvirt = false;

        if (!copy)
                return KSM_UNMERGEABLE_NOT_MARKED;
        args = copy;

        for (const char *a = next_arg(args, size, NULL); a; a = next_arg(args, size, a)) {
                if (contains(a, "mem-merge=off") || contains(a, "\"merge\":false") ||
                    (contains(a, "memory-backend") && contains(a, ",merge=off")))
                        merge_off = true;
                if (contains(a, "\"hugetlb\":true") || contains(a, "hugetlb=on") ||
                    (contains(a, "mem-path") && contains(a, "hugepages")))
                        hugepages = true;
                if (strncmp(a, "guest=", 6) == 0)
                        libvirt = true;
        }
        if (merge_off)
                return libvirt ? KSM_UNMERGEABLE_NOSHAREPAGES : KSM_UNMERGEABLE_MEM_MERGE_OFF;
        if (hugepages)
                return KSM_UNMERGEABLE_HUGEPAGES;
        return KSM_UNMERGEABLE_NOT_MARKED;
}

static const char *const unmergeable_strings[_KSM_UNMERGEABLE_MAX] = {
        [KSM_UNMERGEABLE_NOT_MARKED] = "its memory is not marked mergeable (madvise MADV_MERGEABLE or "
                                       "prctl PR_SET_MEMORY_MERGE); QEMU does so unless run with "
                                       "-machine mem-merge=off",
        [KSM_UNMERGEABLE_MEM_MERGE_OFF] = "QEMU runs with -machine mem-merge=off (libvirt: "
                                          "<memoryBacking><nosharepages/>)",
        [KSM_UNMERGEABLE_NOSHAREPAGES] = "libvirt's <memoryBacking><nosharepages/> (QEMU -machine "
                                         "mem-merge=off)",
        [KSM_UNMERGEABLE_HUGEPAGES] = "its memory is on huge pages (hugetlbfs, libvirt's "
                                      "<memoryBacking><hugepages/>), which KSM does not merge",
};

static const char *const unmergeable_labels[_KSM_UNMERGEABLE_MAX] = {
        [KSM_UNMERGEABLE_NOT_MARKED] = "not-marked",
        [KSM_UNMERGEABLE_MEM_MERGE_OFF] = "mem-merge-off",
        [KSM_UNMERGEABLE_NOSHAREPAGES] = "nosharepages",
        [KSM_UNMERGEABLE_HUGEPAGES] = "hugepages",
};

/* The reason in words, for people. */
const char *ksm_unmergeable_to_string(KsmUnmergeable r) {
        return r >= 0 && r < _KSM_UNMERGEABLE_MAX ? unmergeable_strings[r] : unmergeable_strings[0];
}

/* The reason as one short word, for a metric label and scripts: one of a fixed set of four. */
const char *ksm_unmergeable_label(KsmUnmergeable r) {
        return r >= 0 && r < _KSM_UNMERGEABLE_MAX ? unmergeable_labels[r] : unmergeable_labels[0];
}

/**
 * ksm_proc_name_sanitize() - make a name read from a process valid UTF-8 in place: each byte that does
 * not belong to a valid UTF-8 sequence becomes '?', so that JSON and metric labels can hold it.
 */
void ksm_proc_name_sanitize(char *s) {
        unsigned char *p = (unsigned char *) s;

        while (*p) {
                size_t len = *p < 0x80             ? 1
                             : (*p & 0xe0) == 0xc0 ? 2
                             : (*p & 0xf0) == 0xe0 ? 3
                             : (*p & 0xf8) == 0xf0 ? 4
                                                   : 0;
                bool valid = len > 0 && !(len == 2 && *p < 0xc2) && !(len == 4 && *p > 0xf4);

                for (size_t i = 1; valid && i < len; i++)
                        valid = (p[i] & 0xc0) == 0x80;
                if (!valid) {
                        *p++ = '?';
                        continue;
                }
                p += len;
        }
}
