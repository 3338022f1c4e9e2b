/* ptrmap.h - process-local open-addressing map from an allocation key (pointer, VMM handle, array) to
 * its charged size and device, so frees un-charge exactly what was charged. Callers hold vg_lock. */
#ifndef HAMI_PTRMAP_H
#define HAMI_PTRMAP_H
#include <stdint.h>

struct vg_ptr_entry {
    uint64_t key;   /* 0 = empty, UINT64_MAX = deleted */
    uint64_t size;
    int dev;
};

struct vg_ptrmap {
    struct vg_ptr_entry *slots;
    uint64_t cap;   /* power of two */
    uint64_t used;  /* live + deleted */
};

int vg_map_put(struct vg_ptrmap *m, uint64_t key, uint64_t size, int dev);
int vg_map_take(struct vg_ptrmap *m, uint64_t key, uint64_t *size, int *dev);  /* 1 when found and removed */
void vg_map_clear(struct vg_ptrmap *m);

#endif
