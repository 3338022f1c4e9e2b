/* throttle.c - the token-bucket arithmetic of the SM limit, kept pure so CI can test it directly.
 *
 * The container earns GPU time at share% of wall time (refill) and spends what its kernels were
 * measured to take on the GPU (events). A launch may go when the credit minus the work already queued
 * is positive; otherwise it waits about as long as the refill needs to cover the deficit. */
#include "vgpu.h"

/* Adds elapsed * share / 100 to *tokens (capped at cap_ns) and moves *refill_ns to now. Safe under
 * concurrent callers from several processes: only the caller that advances refill_ns adds credit.
 * Returns the credit added. */
int64_t hami_vgpu_bucket_refill(int64_t *tokens, int64_t *refill_ns, int64_t now_ns, int share, int64_t cap_ns)
{
    int64_t over;
    return hami_vgpu_bucket_refill_over(tokens, refill_ns, now_ns, share, cap_ns, &over);
}

/* The same refill, and *over_ns the credit the cap took away (what was earned beyond the depth, or held above it
 * before: the caller may keep it as a reserve that is never spent, launch.c). 0 when nothing was capped. */
int64_t hami_vgpu_bucket_refill_over(int64_t *tokens, int64_t *refill_ns, int64_t now_ns, int share, int64_t cap_ns,
                                     int64_t *over_ns)
{
    *over_ns = 0;
    int64_t last = __atomic_load_n(refill_ns, __ATOMIC_ACQUIRE);
    if (share <= 0 || share >= 100 || now_ns <= last)
        return 0;
    if (!__atomic_compare_exchange_n(refill_ns, &last, now_ns, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    /* a gap of more than ~18 min fills any bucket from any debt it can have: counted as that, so a rewritten or
     * ancient refill time cannot overflow the product (a wrapped one was a debt of years) */
    int64_t elapsed = last < now_ns - (1LL << 40) ? (1LL << 40) : now_ns - last;
    int64_t add = elapsed * share / 100;
    int64_t cur = __atomic_add_fetch(tokens, add, __ATOMIC_ACQ_REL);
    while (cur > cap_ns) {
        int64_t was = cur;
        if (__atomic_compare_exchange_n(tokens, &cur, cap_ns, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            *over_ns = was - cap_ns;
            break;
        }
    }
    return add;
}

/* 0 when a launch may go now; otherwise how long to sleep before checking again. */
int64_t hami_vgpu_throttle_wait_ns(int64_t tokens_ns, int64_t inflight_ns, int share)
{
    if (share <= 0 || share >= 100)
        return 0;
    int64_t avail = tokens_ns - inflight_ns;
    if (avail > 0)
        return 0;
    int64_t wait = (-avail + 1) * 100 / share;
    if (wait < 20000)
        wait = 20000;
    if (wait > 2000000)
        wait = 2000000;
    return wait;
}

/* Credit a stopped container must earn before it resumes. With period P and share s this makes the
 * throttle a square wave: on for s*P, off for (1-s)*P. Long on-phases matter on power-capped GPUs: in
 * short bursts the H100 runs a matmul at 1980 MHz instead of the 1395 MHz it sustains under full load, so
 * fine-grained time slicing hands out more throughput than its share (measured +8 points at 50%). */
int64_t hami_vgpu_resume_credit_ns(int64_t period_ns, int share)
{
    if (share <= 0 || share >= 100 || period_ns <= 0)
        return 0;
    return period_ns * share / 100 * (100 - share) / 100;
}

/* Processor-sharing charge of a busy interval [a, b) (ns): without MPS the GPU time-slices evenly between
 * the contexts that have work queued, so a tenant busy over [a, b) received the integral of 1/n(t), where
 * n(t) is 1 plus the number of the other tenants' busy intervals [since[i], until[i]) covering t. The
 * others' intervals come from the node board (at most HAMI_PS_MAX are counted); n is bounded by count + 1. */
int64_t hami_vgpu_ps_charge_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until, int count)
{
    return hami_vgpu_ps_charge_bounded_ns(a, b, since, until, count, -1);
}

/* The same charge with at most k others counted at any instant: n(t) = 1 + min(m(t), k), m(t) the intervals
 * covering t (k < 0: no bound). The board is world-writable and proves nobody busy; k comes from a count the
 * tenant cannot write (nvmlq.c: the processes with a compute context on the GPU, less this container's own),
 * so forged busy entries can lower a charge only to (b - a) / (1 + k), never to (b - a) / 17. Only the number
 * at each instant is capped, not a choice of which intervals count (by start, by order on the board): there is
 * nothing for a forger to steer, and with k at least the largest overlap the charge is the unbounded one.
 * Callers pass each tenant's intervals merged (hami_vgpu_interval_union), so m(t) counts tenants. */
int64_t hami_vgpu_ps_charge_bounded_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until, int count,
                                       int k)
{
    return hami_vgpu_ps_charge_sib_ns(a, b, since, until, count, k, NULL, NULL, 0, 0);
}

/* The charge of [a, b) for a process with siblings in its container (docs/interposer.md "Several processes in one
 * container"): each of the container's processes is a context of its own, and the GPU time-slices between
 * contexts, not containers; so n(t) = 1 + min(s(t), sk) + min(m(t), k), s(t) the sibling intervals [ssince, suntil)
 * covering t (merged per sibling by the caller, bounded by sk, the container's other processes holding memory on
 * the device: kernel record locks, sk < 0 = no bound), m(t) and k the other containers' as in
 * hami_vgpu_ps_charge_bounded_ns. The siblings' charges of an instant add up to what the container got then: each
 * pays 1 / n(t) (before, each paid as if its siblings were idle: 2 GPU-bound processes at a 30 % limit got 15 %
 * together on the fake, charged 2 x). With no sibling interval it is hami_vgpu_ps_charge_bounded_ns exactly. */
int64_t hami_vgpu_ps_charge_sib_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until, int count, int k,
                                   const int64_t *ssince, const int64_t *suntil, int scount, int sk)
{
    return hami_vgpu_ps_charge_w_ns(a, b, since, until, NULL, count, k, ssince, suntil, scount, sk);
}

/* The same charge with the other containers weighted by the contexts each keeps busy (docs/interposer.md "Several
 * processes in one container", board.c vg_board_ctx_read): weight[i], in 1/100 contexts, is that of the container
 * whose merged interval [since[i], until[i]) it is, so m(t) is the sum of the weights of the intervals covering t,
 * at most k contexts (the driver's count: nothing on the board proves more processes than NVML lists). A container
 * of two GPU-bound processes holds two of the GPU's time slices while it is busy: counted as one, its neighbour was
 * charged 1/2 of the GPU while it got 1/3 (fake: 1.08-1.14 x). Weights only count with a bound (k >= 0) and each
 * within 100..100 * HAMI_SIBLINGS; weight NULL, k < 0 or a weight out of range: one context each, which is
 * hami_vgpu_ps_charge_sib_ns exactly. */
int64_t hami_vgpu_ps_charge_w_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until,
                                 const int32_t *weight, int count, int k, const int64_t *ssince, const int64_t *suntil,
                                 int scount, int sk)
{
    if (scount <= 0 || sk == 0 || !ssince || !suntil)
        scount = 0;  /* no sibling: exactly the bounded charge above (it is this with none) */
    if (b <= a)
        return 0;
    if (count < 0)
        count = 0;
    if (count > HAMI_PS_MAX)
        count = HAMI_PS_MAX;
    if (scount > HAMI_SIB_MAX)
        scount = HAMI_SIB_MAX;
    int64_t pts[2 * (HAMI_PS_MAX + HAMI_SIB_MAX) + 2];
    int np = 0;
    pts[np++] = a;
    pts[np++] = b;
    for (int i = 0; i < count + scount; i++) {
        int64_t s = i < count ? since[i] : ssince[i - count], u = i < count ? until[i] : suntil[i - count];
        if (s > a && s < b)
            pts[np++] = s;
        if (u > a && u < b)
            pts[np++] = u;
    }
    for (int i = 1; i < np; i++)  /* insertion sort: the callers pass only intervals that meet [a, b) */
        for (int j = i; j > 0 && pts[j - 1] > pts[j]; j--) {
            int64_t t = pts[j];
            pts[j] = pts[j - 1];
            pts[j - 1] = t;
        }
    int64_t total = 0;
    for (int p = 0; p + 1 < np; p++) {
        int64_t lo = pts[p], hi = pts[p + 1];
        if (hi <= lo)
            continue;
        int64_t m = 0;  /* the other containers' contexts covering the piece, 1/100 */
        int s = 0;
        for (int i = 0; i < count; i++) {
            if (since[i] > lo || until[i] < hi)
                continue;
            int32_t w = weight && k >= 0 ? weight[i] : 100;
            m += w >= 100 && w <= 100 * HAMI_SIBLINGS ? w : 100;
        }
        for (int i = 0; i < scount; i++)
            s += ssince[i] <= lo && suntil[i] >= hi;
        if (k >= 0 && m > 100 * (int64_t)k)
            m = 100 * (int64_t)k;
        if (sk >= 0 && s > sk)
            s = sk;
        /* (hi - lo) / (1 + s + m / 100): a plain division while m counts whole contexts (every weight 100: the
         * unweighted charge to the nanosecond, and no 128-bit division on the common path), else in 128 bits */
        int64_t d = 100 + 100 * (int64_t)s + m;
        total += m % 100 == 0 ? (hi - lo) / (d / 100) : (int64_t)((__int128)(hi - lo) * 100 / d);
    }
    return total;
}

/* Merges one tenant's busy intervals [since[i], until[i]) in place into their disjoint union (sorted, touching
 * ones joined); returns how many remain. A container is busy or not at any instant: its intervals on the node
 * board (the ring of recent ones and the open one, written by any of its processes, or forged) must add 1 to a
 * neighbour's n(t) at most, or a ring of 32 forged copies of one span would cut every charge to 1/33. Counting
 * two busy processes of one container once errs toward charging the neighbours more. */
int hami_vgpu_interval_union(int64_t *since, int64_t *until, int count)
{
    if (count <= 0)
        return 0;
    for (int i = 1; i < count; i++)  /* insertion sort by start: a user has at most HAMI_BOARD_RECENT + 1 */
        for (int j = i; j > 0 && since[j - 1] > since[j]; j--) {
            int64_t s = since[j], u = until[j];
            since[j] = since[j - 1];
            until[j] = until[j - 1];
            since[j - 1] = s;
            until[j - 1] = u;
        }
    int m = 0;
    for (int i = 1; i < count; i++) {
        if (since[i] <= until[m]) {
            if (until[i] > until[m])
                until[m] = until[i];
        } else {
            m++;
            since[m] = since[i];
            until[m] = until[i];
        }
    }
    return m + 1;
}

/* What a neighbour would use if it were not contended (1/100 %), from what it was charged (used) and the share of
 * wall time it had work outstanding on the GPU (queued, waits behind other contexts included): its work plus the
 * time it left the GPU idle, used / (used + 10000 - queued). Lending is measured against this, not against the
 * charge: under processor sharing a backlogged neighbour at 70 % beside a GPU-bound one is charged ~45 % (issue 18:
 * CuPy 30 + 70 on the H200 ran at the native 48.5 + 48.5, the 70 % tenant lending 22 points it wanted). For a
 * program that waits for each kernel (CuPy, JAX with a sync per step) this is its demand alone; one that launches
 * ahead loses host time to the waits and is estimated above its demand (it lends less: the guarantee is kept, some
 * work conservation is not). At least used; 10000 when it was never idle. Inputs bounded by the caller. */
int64_t hami_vgpu_lend_demand_bp(int64_t used, int64_t queued)
{
    if (used < 0 || used > 10000 || queued < 0 || queued > 10000)
        return 10000;
    int64_t idle = 10000 - queued;
    if (used + idle <= 0)
        return 10000;
    int64_t d = used * 10000 / (used + idle);
    return d < used ? used : d;
}

/* The same, less where the neighbour's own measured demand alone (solo, 1/100 %: lending.c update_solo_demand,
 * its kernels over the time it would have run without waiting behind its neighbours) reads lower, but never
 * below its charge (used): it lends at most limit - charged - margin, what it was measured to leave unused.
 * Why: used / (used + idle) holds for a program that waits for each of its kernels; a launch-bound one that
 * launches ahead (small-batch inference, 10 us kernels and 12 us of host time each, a sync per ~200) has its
 * queue outstanding through every slice its neighbour holds, so its queued share reads ~85 % and the estimate
 * ~75 % against its ~43 % alone (conformance isolation/work-conserving-sharing, H100 record 9b: it lent nothing
 * and the pair charged 91.6 % < 95; fake, this repo's bench/turns.py trainfer 50 + 50: charged ~38-42 %, queued
 * 82-89 %, estimate 67-80 %, demand alone 39-44 %). Its demand alone subtracts exactly those waits. A program
 * that waits for each kernel (CuPy's pattern, the case the queued estimate was made for) reads about as high
 * either way: its waits behind the other context are its own sync waits, subtracted alike. solo <= 0 (never
 * measured, or not capped) or out of range: the queued estimate alone. Inputs bounded as hami_vgpu_lend_demand_bp's
 * (a board value out of range lends nothing); solo comes from the board too, and can only lower the estimate to the
 * charge, which the same writer could forge directly. */
int64_t hami_vgpu_lend_demand_solo_bp(int64_t used, int64_t queued, int64_t solo)
{
    int64_t d = hami_vgpu_lend_demand_bp(used, queued);
    if (used < 0 || used > 10000 || queued < 0 || queued > 10000 || solo <= 0 || solo > 10000)
        return d;
    int64_t s = solo > used ? solo : used;
    /* Waiting, not idle (lendguard): a neighbour whose work was queued but not running (queued - used: behind its
     * neighbours' slices) for at least HAMI_LEND_WAITING_PCT of its time off the GPU (10000 - used), and whose
     * host waited for that work (charged below its demand alone: s - used, the share of its wall its syncs waited
     * beyond its own kernels), is short of GPU time, not leaving it idle. Time-sliced, each point it lends to the
     * neighbour it waits behind is about a point more of waiting, and its demand alone reads low by about its
     * waits (contention depresses it). So its shortfall counts HAMI_LEND_SHORT_WEIGHT times on top of its demand
     * alone: it lends only once it gets what it asks for. H100 record 10, the conformance pair (training +
     * small-batch inference at 50 + 50): the inference loop (46.8 % alone) lent by a demand alone that read a few
     * points low and was charged 38.6 % (guarantee 41.8: missed; 41.6 before lendconf) while the training loop
     * borrowed 2.4 points and the pair stayed at 91 %. One whose queue is mostly empty while it is off the GPU (a
     * light lender: it leaves those gaps idle) or that gets its demand alone (two launch-bound loops, each
     * charged about its demand alone: on the H100 ~46-49 % against 46-49 % published) lends as before. The weight
     * only raises the estimate (lends less), and the queued estimate still bounds it. Each term <= 10000: no
     * overflow in 64 bits. */
    if (queued > used && (queued - used) * 100 >= (int64_t)HAMI_LEND_WAITING_PCT * (10000 - used))
        s += (int64_t)HAMI_LEND_SHORT_WEIGHT * (s - used);
    return s < d ? s : d;
}

/* The same, and at least the neighbour's own demand alone (solo, capped at 10000) where it publishes a valid one
 * (jaxslice, HAMI_SM_LEND_SLICED): it lends at most limit - max(charged, demand alone) - margin, never what the queued
 * estimate says it leaves idle while its own measure says it would use it. Why: the queued estimate counts as idle the
 * time with nothing of its work outstanding, and a time-sliced program that waits for each kernel (JAX: a matmul and
 * a block_until_ready a step) reads there below what it wants whenever its queued share reads low (a period judged
 * host-paced, whose waits publish_fraction discounts); H100 record 19 stage 33: its 70 % tenant, never held, charged
 * 47-54 % with demand alone 67-75 % (89 % busy alone), lent up to ~12 points to the 30 % tenant, which was charged
 * 33-43 %. A program below its limit alone still lends what it leaves (its demand alone is below the limit); the
 * board's solo can only raise the estimate here (it lends less), so a forger gains nothing it could not by writing a
 * higher charge. Inputs bounded as hami_vgpu_lend_demand_solo_bp's. */
int64_t hami_vgpu_lend_demand_sliced_bp(int64_t used, int64_t queued, int64_t solo)
{
    int64_t d = hami_vgpu_lend_demand_solo_bp(used, queued, solo);
    if (solo <= 0 || solo > 10000)
        return d;
    return solo > d ? solo : d;
}

/* Work-conserving lending under GPU_CORE_UTILIZATION_POLICY=default (docs/interposer.md "Lending"): the share
 * a container with limit own may use while the listed neighbours are active on its GPU. Each neighbour lends
 * what it leaves unused of its own limit, max(0, limit - recent charged fraction - a margin), so the limits stay
 * guarantees (max-min fairness): one that wants its full share uses it and lends nothing. Every value comes
 * from the world-writable node board and is bounded here: a neighbour lends nothing when its limit is outside
 * 1..100, its fraction or queued time outside 0..10000 (hundredths of a percent), its fraction older than 1 s
 * (or written in the future), it waited for credit within the last 100 ms (held: it wants its share), or it had
 * work on the GPU >= 97 % of the time (backlogged: it wants more than it gets); and nobody lends
 * anything while the active limits add up to more than the whole GPU (an over-committed or forged board), so
 * a forged entry can hand out at most GPU time that no container is guaranteed. At most 100.
 *
 * Each neighbour keeps a margin of 3 points of its unused share. Without it lending is only neutrally stable:
 * under processor sharing a GPU-bound neighbour gets the GPU time the borrower leaves and need not ever wait
 * for credit, so with limits 30 + 70 any split e + (100 - e), e >= 30, is a fixed point (it lends e - 30, the
 * borrower's share in force is e) and noise walks the borrower's share upwards. With the margin the borrower's
 * share in force is e - 3 at such a split: it contracts back to its limit. The cost: a pair keeps the GPU busy
 * up to 100 - 3 %, not 100 %. The queued test is a second guard for the same case.
 * Ages are now minus the time written (ns). */
int hami_vgpu_lent_share(int own, const int32_t *limit, const int32_t *frac_bp, const int32_t *queued_bp,
                         const int64_t *frac_age_ns, const int64_t *held_age_ns, int count)
{
    return hami_vgpu_lent_share_bounded(own, limit, frac_bp, queued_bp, NULL, frac_age_ns, held_age_ns, count, -1);
}

/* The same with at most k lenders (k < 0: no bound), k from the count nobody on the board can write (see
 * hami_vgpu_ps_charge_bounded_ns): the k that lend least are taken. Their sum is at most that of any k of the
 * entries, so of the real lenders when at most k are real: a forged entry can replace a real lender only by
 * lending less than it, and adds nothing while the real ones fill the k. solo_bp (NULL: none): each neighbour's
 * published demand alone, which may lower its demand estimate down to its charge (hami_vgpu_lend_demand_solo_bp). */
int hami_vgpu_lent_share_bounded(int own, const int32_t *limit, const int32_t *frac_bp, const int32_t *queued_bp,
                                 const int32_t *solo_bp, const int64_t *frac_age_ns, const int64_t *held_age_ns,
                                 int count, int k)
{
    return hami_vgpu_lent_share_sliced(own, limit, frac_bp, queued_bp, solo_bp, frac_age_ns, held_age_ns, count, k, 0);
}

/* The same; sliced (HAMI_SM_LEND_SLICED) measures each neighbour's demand by hami_vgpu_lend_demand_sliced_bp (at
 * least its published demand alone), else by hami_vgpu_lend_demand_solo_bp as before jaxslice. */
int hami_vgpu_lent_share_sliced(int own, const int32_t *limit, const int32_t *frac_bp, const int32_t *queued_bp,
                                const int32_t *solo_bp, const int64_t *frac_age_ns, const int64_t *held_age_ns,
                                int count, int k, int sliced)
{
    if (own <= 0 || own >= 100 || count <= 0)
        return own;
    if (count > 64)
        count = 64;
    int64_t sum = own, lent_bp = 0;
    int64_t spares[64];
    int ns = 0;
    for (int i = 0; i < count; i++) {
        if (limit[i] >= 1 && limit[i] <= 100)
            sum += limit[i];
        int ok = limit[i] >= 1 && limit[i] <= 100 && frac_bp[i] >= 0 && frac_bp[i] <= 10000 &&
                 queued_bp[i] >= 0 && queued_bp[i] < HAMI_LEND_QUEUED_MAX_BP &&
                 frac_age_ns[i] >= -1000000LL && frac_age_ns[i] <= 1000000000LL && held_age_ns[i] >= 100000000LL;
        int64_t solo = solo_bp ? solo_bp[i] : 0;
        int64_t spare = (int64_t)limit[i] * 100 -
                        (sliced ? hami_vgpu_lend_demand_sliced_bp(frac_bp[i], queued_bp[i], solo)
                                : hami_vgpu_lend_demand_solo_bp(frac_bp[i], queued_bp[i], solo)) -
                        HAMI_LEND_MARGIN_BP;
        if (ok && spare > 0)
            spares[ns++] = spare;
    }
    if (sum > 100)
        return own;
    for (int i = 1; i < ns; i++)  /* insertion sort, ascending: at most 64 */
        for (int j = i; j > 0 && spares[j - 1] > spares[j]; j--) {
            int64_t t = spares[j];
            spares[j] = spares[j - 1];
            spares[j - 1] = t;
        }
    for (int i = 0; i < ns && (k < 0 || i < k); i++)
        lent_bp += spares[i];
    int64_t eff = own + lent_bp / 100;
    return eff > 100 ? 100 : (int)eff;
}
