/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A model of ksmd merging guests' memory, for the adaptive controller's unit tests: it produces the
 * counter traces the kernel would give (full_scans, pages_scanned, pages_shared, pages_sharing,
 * pages_unshared, pages_volatile) and ksmd's CPU time, as the controller turns pages_to_scan and
 * sleep_millisecs.
 *
 * What it keeps of mm/ksm.c: ksmd wakes every sleep_millisecs and looks at pages_to_scan pages, walking the
 * mergeable processes in list order and each one's present pages in address order; reaching the end of the
 * list ends the batch and counts a full scan; the unstable tree is rebuilt on every full scan. A page's first
 * visit only takes note of it (volatile): a page just faulted in does not merge yet, not even with a KSM page
 * (as measured on Linux 6.18: a guest's new memory merges on the visit after the one that first saw it). At
 * later visits it is looked up in the stable tree, then in the unstable tree, and merged with an identical page
 * found there (a new KSM page: pages_shared + 1 and pages_sharing + 1) or inserted (unshared). A process made
 * mergeable is queued just behind the scan cursor. Pages of memory not yet filled are not there to scan.
 * Every page of a guest's first dup‰ holds content that depends only on its index (the same in every guest);
 * the rest is unique.
 *
 * Pages are modelled in chunks of KSM_MODEL_CHUNK pages that always share a state; counters are in pages.
 * Costs, in µs of ksmd's CPU per page: a page already merged KSM_MODEL_COST_MERGED, any other
 * KSM_MODEL_COST_WORK, calibrated on a 2-vCPU KVM host (about 16 CPU-s to merge 4 × 2 GiB; 28 % of a CPU
 * at 10000 pages every 10 ms once merged).
 */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KSM_MODEL_CHUNK       16
#define KSM_MODEL_COST_WORK   4.0
#define KSM_MODEL_COST_MERGED 0.39
#define KSM_MODEL_MAX_GUESTS  8

enum { CHUNK_UNSEEN, CHUNK_VOLATILE, CHUNK_UNSHARED, CHUNK_MERGED };

typedef struct ModelGuest {
        uint32_t chunks, dup;   /* all its chunks; those of shared content */
        double announced;       /* s: its VM is created (the kernel's uevent) */
        double fill_at, fill_s; /* s: its memory arrives from fill_at, evenly over fill_s */
        bool queued;            /* made mergeable: in ksmd's list */
        uint32_t merged;        /* chunks merged: its ksm_merging_pages / KSM_MODEL_CHUNK */
        uint8_t *state;
} ModelGuest;

typedef struct KsmModel {
        ModelGuest g[KSM_MODEL_MAX_GUESTS];
        unsigned n;
        unsigned order[KSM_MODEL_MAX_GUESTS]; /* ksmd's list */
        unsigned listed;
        unsigned cur;      /* index in order[] */
        uint32_t cur_page; /* chunk within it */
        int32_t *unstable; /* per content index: 1 + the guest whose page is in the unstable tree, or 0 */
        bool *stable;      /* per content index: a KSM page holds it */
        uint32_t max_dup;
        uint64_t full_scans, scanned, shared, sharing, unshared, tracked;
        double t;   /* s */
        double cpu; /* s of ksmd's CPU */
        double carry;
} KsmModel;

static inline void model_add_guest(KsmModel *m, uint64_t mib, unsigned dup_permille, double announced, double fill_at,
                                   double fill_s) {
        ModelGuest *g = &m->g[m->n++];

        ck_assert_uint_le(m->n, KSM_MODEL_MAX_GUESTS);
        g->chunks = (uint32_t) (mib * 256 / KSM_MODEL_CHUNK);
        g->dup = (uint32_t) ((uint64_t) g->chunks * dup_permille / 1000);
        g->announced = announced;
        g->fill_at = fill_at;
        g->fill_s = fill_s;
        g->state = calloc(g->chunks, 1);
        ck_assert_ptr_nonnull(g->state);
        if (g->dup > m->max_dup) {
                m->max_dup = g->dup;
                m->unstable = realloc(m->unstable, sizeof(int32_t) * m->max_dup);
                m->stable = realloc(m->stable, sizeof(bool) * m->max_dup);
                ck_assert(m->unstable && m->stable);
                memset(m->unstable, 0, sizeof(int32_t) * m->max_dup);
                memset(m->stable, 0, sizeof(bool) * m->max_dup);
        }
}

static inline void model_done(KsmModel *m) {
        for (unsigned i = 0; i < m->n; i++)
                free(m->g[i].state);
        free(m->unstable);
        free(m->stable);
}

static inline uint32_t model_present(const ModelGuest *g, double t) {
        double f;

        if (t < g->fill_at)
                return 0;
        f = g->fill_s > 0 ? (t - g->fill_at) / g->fill_s : 1;
        return f >= 1 ? g->chunks : (uint32_t) (f * g->chunks);
}

/* The guests' resident memory, kB (announced guests only: a process exists from its announcement). */
static inline uint64_t model_guests_kb(const KsmModel *m) {
        uint64_t kb = 0;

        for (unsigned i = 0; i < m->n; i++)
                if (m->t >= m->g[i].announced)
                        kb += (uint64_t) model_present(&m->g[i], m->t) * KSM_MODEL_CHUNK * 4;
        return kb;
}

static inline KsmCounters model_counters(const KsmModel *m) {
        uint64_t k = KSM_MODEL_CHUNK;

        return (KsmCounters) {
                .full_scans = m->full_scans,
                .pages_shared = m->shared * k,
                .pages_sharing = m->sharing * k,
                .pages_unshared = m->unshared * k,
                .pages_volatile = (m->tracked - m->shared - m->sharing - m->unshared) * k,
                .pages_scanned = m->scanned * k,
                .has_pages_scanned = true,
        };
}

/* Queue the guests that madvise()d by now, behind the cursor, as ksm_enter() does. */
static inline void model_enter(KsmModel *m) {
        for (unsigned i = 0; i < m->n; i++) {
                if (m->g[i].queued || m->t < m->g[i].fill_at)
                        continue;
                memmove(&m->order[m->cur + 1], &m->order[m->cur], sizeof(unsigned) * (m->listed - m->cur));
                m->order[m->cur] = i;
                m->listed++;
                m->cur++;
                m->g[i].queued = true;
        }
        if (m->cur >= m->listed)
                m->cur = 0;
}

/* One visit of chunk @p of guest @gi: its cost, µs per page. */
static inline double model_visit(KsmModel *m, unsigned gi, uint32_t p) {
        ModelGuest *g = &m->g[gi];
        uint8_t *s = &g->state[p];
        bool dup = p < g->dup;

        if (*s == CHUNK_MERGED)
                return KSM_MODEL_COST_MERGED;
        if (*s == CHUNK_UNSEEN)
                m->tracked++;
        if (*s == CHUNK_UNSEEN)
                *s = CHUNK_VOLATILE;
        else if (dup && m->stable[p]) {
                if (*s == CHUNK_UNSHARED)
                        m->unshared--;
                *s = CHUNK_MERGED;
                g->merged++;
                m->sharing++;
        } else if (dup && m->unstable[p] > 0 && m->unstable[p] != (int32_t) gi + 1) {
                ModelGuest *o = &m->g[m->unstable[p] - 1];

                if (o->state[p] == CHUNK_UNSHARED)
                        m->unshared--;
                o->state[p] = CHUNK_MERGED;
                o->merged++;
                if (*s == CHUNK_UNSHARED)
                        m->unshared--;
                *s = CHUNK_MERGED;
                g->merged++;
                m->stable[p] = true;
                m->unstable[p] = 0;
                m->shared++;
                m->sharing++;
        } else {
                if (*s != CHUNK_UNSHARED)
                        m->unshared++;
                *s = CHUNK_UNSHARED;
                if (dup)
                        m->unstable[p] = (int32_t) gi + 1;
        }
        return KSM_MODEL_COST_WORK;
}

/* One wake-up of ksmd at m->t: look at @pages pages, then sleep @sleep_ms. Advances m->t and m->cpu. */
static inline void model_batch(KsmModel *m, uint64_t pages, uint64_t sleep_ms) {
        double chunks = (double) pages / KSM_MODEL_CHUNK + m->carry, us = 0;
        uint32_t todo = (uint32_t) chunks;

        m->carry = chunks - todo;
        model_enter(m);
        while (todo > 0 && m->listed > 0) {
                ModelGuest *g = &m->g[m->order[m->cur]];
                uint32_t present = model_present(g, m->t);

                if (m->cur_page >= present) {
                        m->cur_page = 0;
                        if (++m->cur >= m->listed) { /* the end of the list ends the batch */
                                m->cur = 0;
                                m->full_scans++;
                                memset(m->unstable, 0, sizeof(int32_t) * m->max_dup);
                                break;
                        }
                        continue;
                }
                us += model_visit(m, m->order[m->cur], m->cur_page++) * KSM_MODEL_CHUNK;
                m->scanned++;
                todo--;
        }
        m->cpu += us / 1e6;
        m->t += us / 1e6 + (double) sleep_ms / 1000;
}
