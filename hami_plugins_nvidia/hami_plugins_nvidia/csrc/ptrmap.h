/* ptrmap.h - process-local open-addressing map from an allocation key (pointer, VMM handle, array) to
 * its charged size and device, so frees un-charge exactly what was charged. Callers hold vg_lock. */
#ifndef HAMI_PTRMAP_H
#define HAMI_PTRMAP_H
#include <stdint.h>

struct vg_ptr_entry {
    uint64_t key;   /* 0 = empty, UINT64_MAX = deleted */
    uint64_t size;
    int dev;
    uint64_t ctx;   /* context the allocation belongs to (0 = none, e.g. a VMM handle) */
};

struct vg_ptrmap {
    struct vg_ptr_entry *slots;
    uint64_t cap;   /* power of two */
    uint64_t used;  /* live + deleted */
};

int vg_map_put(struct vg_ptrmap *m, uint64_t key, uint64_t size, int dev, uint64_t ctx);
int vg_map_take(struct vg_ptrmap *m, uint64_t key, uint64_t *size, int *dev);  /* 1 when found and removed */
uint64_t vg_map_take_ctx(struct vg_ptrmap *m, uint64_t ctx);  /* removes all of a context's; returns their bytes */
void vg_map_clear(struct vg_ptrmap *m);

#endif
