/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The original ksmtuned's tuning decisions, as a pure function of settings, memory and previous npages. */
#include "policy.h"
#include "util.h"

const char *const knob_names[_KNOB_MAX] = {
        [KNOB_PAGES_TO_SCAN] = "pages_to_scan",
        [KNOB_SLEEP_MILLISECS] = "sleep_millisecs",
        [KNOB_RUN] = "run",
        [KNOB_ADVISOR_MODE] = "advisor_mode",
        [KNOB_ADVISOR_MAX_CPU] = "advisor_max_cpu",
        [KNOB_ADVISOR_MIN_PAGES] = "advisor_min_pages_to_scan",
        [KNOB_ADVISOR_MAX_PAGES] = "advisor_max_pages_to_scan",
        [KNOB_ADVISOR_TARGET_SCAN_TIME] = "advisor_target_scan_time",
        [KNOB_SMART_SCAN] = "smart_scan",
        [KNOB_USE_ZERO_PAGES] = "use_zero_pages",
        [KNOB_MAX_PAGE_SHARING] = "max_page_sharing",
        [KNOB_MERGE_ACROSS_NODES] = "merge_across_nodes",
};

/* Saturating arithmetic: the original's shell arithmetic overflowed on large hosts; ours must not. */
static int64_t add_sat(int64_t a, int64_t b) {
        int64_t r;

        if (__builtin_add_overflow(a, b, &r))
                return b > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

static uint64_t mul_sat(uint64_t a, uint64_t b) {
        uint64_t r;

        if (__builtin_mul_overflow(a, b, &r))
                return UINT64_MAX;
        return r;
}

static uint64_t add_sat_u(uint64_t a, uint64_t b) {
        uint64_t r;

        if (__builtin_add_overflow(a, b, &r))
                return UINT64_MAX;
        return r;
}

/**
 * policy_params() - what the original computed once at start: the sleep time and the free threshold.
 *
 * sleep = KSM_SLEEP_MSEC × 16 GiB / MemTotal (in kB), at least 10 ms;
 * thres = MemTotal × KSM_THRES_COEF / 100, at least KSM_THRES_CONST. Truncating integer division.
 */
void policy_params(const Settings *s, uint64_t mem_total, PolicyParams *ret) {
        uint64_t total = mem_total > 0 ? mem_total : 1;
        uint64_t sleep_msec = s->sleep_msec > 0 ? (uint64_t) s->sleep_msec : 0;
        uint64_t coef = s->thres_coef > 0 ? (uint64_t) s->thres_coef : 0;
        uint64_t cnst = s->thres_const > 0 ? (uint64_t) s->thres_const : 0;
        uint64_t sleep, thres;

        sleep = mul_sat(sleep_msec, UINT64_C(16) * 1024 * 1024) / total;
        if (sleep <= 10)
                sleep = 10;
        thres = mul_sat(total, coef) / 100;
        if (cnst > thres)
                thres = cnst;

        *ret = (PolicyParams) {
                .total = mem_total,
                .sleep_ms = sleep,
                .thres = thres,
        };
}

/**
 * policy_clamp() - keep npages within [KSM_NPAGES_MIN, KSM_NPAGES_MAX], MIN first as the original did.
 */
int64_t policy_clamp(const Settings *s, int64_t npages) {
        if (npages < s->npages_min)
                return s->npages_min;
        if (npages > s->npages_max)
                return s->npages_max;
        return npages;
}

/*
 * Free memory as KSM_FREE_MEMORY counts it, kB: MemAvailable, or MemFree + Buffers + Cached (the original's).
 * @ret_available: NULL, or whether it is MemAvailable.
 */
static uint64_t policy_free(const Settings *s, const Snapshot *snap, bool *ret_available) {
        bool available = s->free_source == FREE_AVAILABLE && snap->has_mem_available;

        if (ret_available)
                *ret_available = available;
        return available ? snap->mem_available : add_sat_u(add_sat_u(snap->mem_free, snap->buffers), snap->cached);
}

/**
 * policy_decide() - one adjustment of the original script, and the opt-in extensions of today's kernels.
 *
 * Stop when the guests plus the threshold fit in memory and free memory is above the threshold
 * (npages is left alone). Otherwise boost npages while free memory is below the threshold, decay it
 * when not, clamp, and run with the derived sleep. With the default settings, that is all.
 *
 * KSM_FREE_MEMORY=available takes MemAvailable as free memory (where the kernel has it).
 * KSM_CPU_BUDGET: when ksmd used more CPU than that since the last adjustment, decay instead of boost.
 * KSM_STOP_MODE=unmerge: when stopping, also unmerge, but only if MemAvailable holds the merged pages
 * and free memory stays above the threshold afterwards (or the next adjustment would start KSM again).
 */
void policy_decide(const Settings *s, const PolicyParams *p, const Snapshot *snap, int64_t prev_npages, Decision *ret) {
        bool available;
        uint64_t free_kb = policy_free(s, snap, &available);
        Decision d = {
                .free = free_kb,
                .thres = p->thres,
                .committed = snap->committed,
                .total = p->total,
                .npages = prev_npages,
                .sleep_ms = p->sleep_ms,
                .free_is_available = available,
                .cpu_budget = s->cpu_budget > 0 ? (uint64_t) s->cpu_budget : 0,
        };

        if (add_sat_u(snap->committed, p->thres) < p->total && free_kb > p->thres) {
                d.run = false;
                if (s->stop_mode == STOP_UNMERGE && snap->merged > 0) {
                        uint64_t avail = snap->has_mem_available ? snap->mem_available : snap->mem_free;

                        if (avail >= snap->merged && free_kb - p->thres > snap->merged)
                                d.unmerge = true;
                        else
                                d.unmerge_refused = true;
                }
                *ret = d;
                return;
        }

        d.run = true;
        d.boost = free_kb < p->thres;
        if (d.boost && s->cpu_budget > 0 && snap->has_ksmd_cpu &&
            snap->ksmd_cpu_permille > (uint64_t) s->cpu_budget * 10) {
                d.boost = false;
                d.cpu_capped = true;
        }
        d.npages = policy_clamp(s, add_sat(prev_npages, d.boost ? s->npages_boost : s->npages_decay));
        *ret = d;
}

/* One step of KSM_POLICY=adaptive's controller: it sets @d's npages and sleep_ms. */
static void policy_adaptive(const Settings *s, const Snapshot *snap, bool event, PolicyState *st, Decision *d) {
        AdaptiveSettings as = {
                .max_rate = (uint64_t) s->adaptive_max_rate,
                .min_rate = (uint64_t) s->adaptive_min_rate,
                .max_cpu = (unsigned) s->adaptive_max_cpu * 10,
                .max_check = (uint64_t) s->monitor_interval * UINT64_C(1000000),
        };
        AdaptiveInput in = {
                .counters = snap->counters,
                .cpu_permille = snap->has_ksmd_cpu ? (int) snap->ksmd_cpu_permille : -1,
                .event = event,
                .now = snap->taken,
                .has_guests = snap->has_guests_resident,
                .guests_kb = snap->guests_resident,
        };

        adaptive_step(&as, &st->adaptive, &in, &st->step);
        d->npages = (int64_t) st->step.pages_to_scan;
        d->sleep_ms = st->step.sleep_ms;
        d->adaptive = true;
        d->adaptive_rate = st->adaptive.rate;
        d->adaptive_why = st->step.why;
}

/**
 * policy_step() - one adjustment under either policy: policy_decide(), then, with KSM_POLICY=adaptive and
 * KSM on, the controller sets the rate; KSM off resets it.
 * @trigger: what caused the adjustment. For the controller, a guest event, a reconnection or a reload
 *           is an event (new pages to merge), and so is free memory fallen by more than 5% of MemTotal
 *           since the last adjustment.
 * @st: carried from the previous step; updated.
 */
void policy_step(const Settings *s, const PolicyParams *p, const Snapshot *snap, Trigger trigger, PolicyState *st,
                 Decision *ret) {
        Decision d;

        policy_decide(s, p, snap, st->npages, &d);
        st->npages = d.npages;
        if (s->policy == POLICY_ADAPTIVE) {
                if (d.run) {
                        bool event = trigger == TRIGGER_GUEST_EVENT || trigger == TRIGGER_RECONNECT ||
                                     trigger == TRIGGER_RELOAD ||
                                     (st->have_last && d.free + d.total / 20 < st->last_free);

                        policy_adaptive(s, snap, event, st, &d);
                } else
                        st->adaptive = (AdaptiveState) {};
        }
        st->have_last = true;
        st->last_free = d.free;
        *ret = d;
}

/**
 * policy_adaptive_check() - the controller's own check between adjustments, at the time it chose: the
 * last decision @d (KSM on) stands, only its rate changes. @snap needs the counters, ksmd's CPU and the
 * time taken; the guests' resident memory and free memory when the last step asked for them
 * (PolicyState.step.watch_guests). When the guests' memory grew, that free memory becomes the reference of
 * the next adjustment's "pressure rose" event.
 */
void policy_adaptive_check(const Settings *s, const Snapshot *snap, PolicyState *st, Decision *d) {
        policy_adaptive(s, snap, false, st, d);
        /* Memory the guests' growth took, which this check has just answered, is not news to the next
         * adjustment's "pressure rose". */
        if (snap->has_guests_resident && st->step.why == WHY_GROWING)
                st->last_free = policy_free(s, snap, NULL);
}
