/* ptrmap.c - see ptrmap.h. Linear probing with tombstones; rehash at 50% load. */
#include <stdlib.h>

#include "ptrmap.h"

#define TOMB UINT64_MAX

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static int grow(struct vg_ptrmap *m)
{
    uint64_t ncap = m->cap ? m->cap * 2 : 1024;
    struct vg_ptr_entry *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return 0;
    uint64_t live = 0;
    for (uint64_t i = 0; i < m->cap; i++) {
        struct vg_ptr_entry *e = &m->slots[i];
        if (e->key == 0 || e->key == TOMB)
            continue;
        uint64_t j = mix(e->key) & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
        live++;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = live;
    return 1;
}

int vg_map_put(struct vg_ptrmap *m, uint64_t key, uint64_t size, int dev, uint64_t ctx)
{
    if (key == 0 || key == TOMB)
        key ^= 0x8000000000000001ULL;  /* keep sentinel values usable as keys */
    if ((m->used + 1) * 2 > m->cap && !grow(m))
        return 0;
    uint64_t j = mix(key) & (m->cap - 1);
    while (m->slots[j].key && m->slots[j].key != TOMB && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (m->slots[j].key == 0)
        m->used++;
    m->slots[j] = (struct vg_ptr_entry){key, size, dev, ctx};
    return 1;
}

int vg_map_take(struct vg_ptrmap *m, uint64_t key, uint64_t *size, int *dev)
{
    if (key == 0 || key == TOMB)
        key ^= 0x8000000000000001ULL;
    if (!m->cap)
        return 0;
    uint64_t j = mix(key) & (m->cap - 1);
    for (uint64_t n = 0; n < m->cap && m->slots[j].key; n++, j = (j + 1) & (m->cap - 1)) {
        if (m->slots[j].key == key) {
            *size = m->slots[j].size;
            *dev = m->slots[j].dev;
            m->slots[j].key = TOMB;
            return 1;
        }
    }
    return 0;
}

uint64_t vg_map_take_ctx(struct vg_ptrmap *m, uint64_t ctx)
{
    uint64_t bytes = 0;
    for (uint64_t j = 0; ctx && j < m->cap; j++) {
        struct vg_ptr_entry *e = &m->slots[j];
        if (e->key && e->key != TOMB && e->ctx == ctx) {
            bytes += e->size;
            e->key = TOMB;
        }
    }
    return bytes;
}

void vg_map_clear(struct vg_ptrmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->used = 0;
}
