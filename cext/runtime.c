/* The C runtime of the native backend: instances, memories, tables, traps.
 *
 * Generated code calls into this file for everything that is not a plain
 * load, store or arithmetic: memory.grow, bulk memory and table operations,
 * host calls. Traps unwind with longjmp to the innermost rt_invoke, which
 * returns the trap kind to Python; the generated code holds no resources, so
 * skipping its frames is safe.
 *
 * Linear memories reserve their maximum size of address space up front
 * (PROT_NONE) and commit pages as they grow, so a memory's base never moves.
 * Every access is still bounds-checked by the generated code.
 *
 * Memories and tables are reference-counted objects a context points to, so
 * instances can share them (an import of another instance's export); the
 * context holds one reference on each. Calls from one instance's code into
 * another's (a shared table's funcref) are bracketed by rt_enter/rt_leave;
 * rt_trap follows those links back to the context whose rt_invoke unwinds.
 *
 * Fuel and Ctrl-C need nothing here: the generated code spends ctx->fuel and
 * polls ctx->interrupt (set from Python by a signal-watching thread) at loop
 * headers and calls, and traps through rt_trap like any other check.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "runtime_api.h"

#define PAGE 65536ULL
#define MAX_PAGES 65536ULL
#define MAX_TABLE 10000000U /* TABLE_ELEMENTS_LIMIT in backends/base.py */
#define STACK_MARGIN (256 * 1024)

_Static_assert(sizeof(rt_ctx) <= RT_STATE_OFFSET, "the inline state memory overlaps rt_ctx");
_Static_assert(sizeof(((rt_ctx *)0)->mem_bases) == RT_INLINE_MEMS * sizeof(uint8_t *),
               "RT_INLINE_MEMS and rt_ctx.mem_bases disagree");
_Static_assert(sizeof(((rt_ctx *)0)->mem_sizes) == RT_INLINE_MEMS * sizeof(uint64_t),
               "RT_INLINE_MEMS and rt_ctx.mem_sizes disagree");

/* A context's copy of a memory's size: registered while the context holds the memory. */
static int32_t mirror_add(rt_memory *m, uint64_t *slot) {
    if (m->nmirrors == m->mirrors_cap) {
        uint32_t cap = m->mirrors_cap ? 2 * m->mirrors_cap : 2;
        uint64_t **p = realloc(m->mirrors, (size_t)cap * sizeof(uint64_t *));
        if (!p)
            return -1;
        m->mirrors = p;
        m->mirrors_cap = cap;
    }
    m->mirrors[m->nmirrors++] = slot;
    *slot = m->size;
    return 0;
}

static void mirror_remove(rt_memory *m, uint64_t *slot) {
    for (uint32_t i = 0; i < m->nmirrors; i++) {
        if (m->mirrors[i] == slot) {
            m->mirrors[i] = m->mirrors[--m->nmirrors];
            return;
        }
    }
}

static rt_ctx *ctx_init(rt_ctx *ctx, uint32_t nmems, uint32_t ntables, uint32_t nglobals,
                        uint32_t nfuncs, uint32_t ndatas, uint32_t nelems, uint32_t max_depth) {
    ctx->nmems = nmems;
    ctx->ntables = ntables;
    ctx->nglobals = nglobals;
    ctx->nfuncs = nfuncs;
    ctx->ndatas = ndatas;
    ctx->nelems = nelems;
    ctx->max_depth = max_depth;
    if (!ctx->mems)
        ctx->mems = calloc(nmems ? nmems : 1, sizeof(rt_memory *));
    ctx->globals = calloc(nglobals ? nglobals : 1, sizeof(uint64_t));
    ctx->tables = calloc(ntables ? ntables : 1, sizeof(rt_table *));
    ctx->funcs = calloc(nfuncs ? nfuncs : 1, sizeof(rt_funcref));
    ctx->frames = calloc((size_t)max_depth + 1, sizeof(uint64_t));
    ctx->datas = calloc(ndatas ? ndatas : 1, sizeof(rt_segment));
    ctx->elems = calloc(nelems ? nelems : 1, sizeof(rt_segment));
    if (!ctx->mems || !ctx->globals || !ctx->tables || !ctx->funcs || !ctx->frames ||
        !ctx->datas || !ctx->elems) {
        rt_ctx_free(ctx);
        return NULL;
    }
    ctx->frames_limit = ctx->frames + max_depth;
    ctx->entry_frame = ctx->frames - 1;
    return ctx;
}

rt_ctx *rt_ctx_new(uint32_t nmems, uint32_t ntables, uint32_t nglobals, uint32_t nfuncs,
                   uint32_t ndatas, uint32_t nelems, uint32_t max_depth) {
    rt_ctx *ctx = calloc(1, sizeof(rt_ctx));
    if (!ctx)
        return NULL;
    return ctx_init(ctx, nmems, ntables, nglobals, nfuncs, ndatas, nelems, max_depth);
}

rt_ctx *rt_ctx_new_inline(uint32_t nmems, uint32_t ntables, uint32_t nglobals, uint32_t nfuncs,
                          uint32_t ndatas, uint32_t nelems, uint32_t max_depth,
                          uint32_t state_mem, uint64_t state_pages) {
    if (state_mem >= nmems || state_pages == 0 || state_pages > MAX_PAGES)
        return NULL;
    rt_memory *m = calloc(1, sizeof(rt_memory));
    if (!m)
        return NULL;
    uint64_t size = RT_STATE_OFFSET + state_pages * PAGE;
    void *block = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) {
        free(m);
        return NULL;
    }
    m->refs = 1; /* the context's */
    m->base = (uint8_t *)block + RT_STATE_OFFSET;
    m->size = state_pages * PAGE;
    m->max_pages = state_pages;
    m->block = block;
    m->block_size = size;
    rt_ctx *ctx = block;
    ctx->mems = calloc(nmems, sizeof(rt_memory *));
    if (!ctx->mems) {
        rt_memory_release(m);
        return NULL;
    }
    ctx->mems[state_mem] = m;
    if (state_mem < RT_INLINE_MEMS) {
        ctx->mem_objs[state_mem] = m;
        ctx->mem_bases[state_mem] = m->base;
        ctx->mem_sizes[state_mem] = m->size; /* it never grows: no mirror */
    }
    return ctx_init(ctx, nmems, ntables, nglobals, nfuncs, ndatas, nelems, max_depth);
}

void rt_ctx_free(rt_ctx *ctx) {
    if (!ctx)
        return;
    rt_memory *inline_state = NULL; /* owns the mapping ctx lives in: released last */
    if (ctx->mems) {
        for (uint32_t i = 0; i < ctx->nmems; i++) {
            rt_memory *m = ctx->mems[i];
            if (m && m->block == (void *)ctx) {
                inline_state = m;
            } else if (m) {
                if (i < RT_INLINE_MEMS)
                    mirror_remove(m, &ctx->mem_sizes[i]);
                rt_memory_release(m);
            }
        }
    }
    if (ctx->tables) {
        for (uint32_t i = 0; i < ctx->ntables; i++)
            rt_table_release(ctx->tables[i]);
    }
    if (ctx->datas) {
        for (uint32_t i = 0; i < ctx->ndatas; i++)
            free(ctx->datas[i].data);
    }
    if (ctx->elems) {
        for (uint32_t i = 0; i < ctx->nelems; i++)
            free(ctx->elems[i].data);
    }
    free(ctx->mems);
    free(ctx->globals);
    free(ctx->tables);
    free(ctx->funcs);
    free(ctx->frames);
    free(ctx->datas);
    free(ctx->elems);
    if (inline_state) {
        memset(ctx, 0, sizeof(rt_ctx)); /* a dead context, until the memory goes */
        rt_memory_release(inline_state);
    } else {
        free(ctx);
    }
}

/* -- memories ------------------------------------------------------------------------------ */

static uint8_t empty_memory[8];

rt_memory *rt_memory_new(uint64_t min_pages, uint64_t max_pages) {
    if (min_pages > MAX_PAGES)
        return NULL;
    if (max_pages > MAX_PAGES)
        max_pages = MAX_PAGES;
    if (min_pages > max_pages)
        return NULL;
    rt_memory *m = calloc(1, sizeof(rt_memory));
    if (!m)
        return NULL;
    m->refs = 1;
    uint64_t reserve = max_pages * PAGE;
    if (reserve == 0) {
        m->base = empty_memory;
        return m;
    }
    void *p = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(m);
        return NULL;
    }
    if (min_pages && mprotect(p, min_pages * PAGE, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, reserve);
        free(m);
        return NULL;
    }
    m->base = p;
    m->size = min_pages * PAGE;
    m->max_pages = max_pages;
    m->reserved = reserve;
    return m;
}

void rt_memory_retain(rt_memory *m) {
    if (m)
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void rt_memory_release(rt_memory *m) {
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (m->block)
        munmap(m->block, m->block_size);
    else if (m->reserved)
        munmap(m->base, m->reserved);
    free(m->mirrors);
    free(m);
}

int32_t rt_memory_attach(rt_ctx *ctx, uint32_t idx, rt_memory *m) {
    if (idx >= ctx->nmems || !m)
        return -1;
    if (ctx->mems[idx] && ctx->mems[idx]->block == (void *)ctx)
        return -1; /* the inline state memory stays: it holds the context */
    if (idx < RT_INLINE_MEMS && mirror_add(m, &ctx->mem_sizes[idx]) != 0)
        return -1;
    rt_memory_retain(m);
    if (idx < RT_INLINE_MEMS && ctx->mems[idx])
        mirror_remove(ctx->mems[idx], &ctx->mem_sizes[idx]); /* the first of two, if m */
    rt_memory_release(ctx->mems[idx]);
    ctx->mems[idx] = m;
    if (idx < RT_INLINE_MEMS) {
        ctx->mem_objs[idx] = m;
        ctx->mem_bases[idx] = m->base;
    }
    return 0;
}

int32_t rt_memory_setup(rt_ctx *ctx, uint32_t idx, uint64_t min_pages, uint64_t max_pages) {
    if (idx >= ctx->nmems)
        return -1;
    rt_memory *m = rt_memory_new(min_pages, max_pages);
    if (!m)
        return -1;
    int32_t st = rt_memory_attach(ctx, idx, m);
    rt_memory_release(m);
    return st;
}

int32_t rt_memory_grow_object(rt_memory *m, uint32_t delta) {
    uint64_t old = m->size / PAGE;
    if (delta == 0)
        return (int32_t)old;
    if ((uint64_t)delta > m->max_pages - old)
        return -1;
    if (mprotect(m->base + m->size, (uint64_t)delta * PAGE, PROT_READ | PROT_WRITE) != 0)
        return -1;
    m->size += (uint64_t)delta * PAGE;
    for (uint32_t i = 0; i < m->nmirrors; i++)
        *m->mirrors[i] = m->size;
    return (int32_t)old;
}

int32_t rt_memory_grow(rt_ctx *ctx, uint32_t mem, uint32_t delta) {
    return rt_memory_grow_object(ctx->mems[mem], delta);
}

/* -- table objects ------------------------------------------------------------------------- */

rt_table *rt_table_new(uint32_t min, uint32_t max) {
    if (min > MAX_TABLE)
        return NULL;
    rt_table *t = calloc(1, sizeof(rt_table));
    if (!t)
        return NULL;
    t->elems = calloc(min ? min : 1, sizeof(uint64_t));
    if (!t->elems) {
        free(t);
        return NULL;
    }
    t->refs = 1;
    t->size = min;
    t->max = max > MAX_TABLE ? MAX_TABLE : max;
    return t;
}

void rt_table_retain(rt_table *t) {
    if (t)
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void rt_table_release(rt_table *t) {
    if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(t->elems);
    free(t);
}

int32_t rt_table_attach(rt_ctx *ctx, uint32_t idx, rt_table *t) {
    if (idx >= ctx->ntables || !t)
        return -1;
    rt_table_retain(t);
    rt_table_release(ctx->tables[idx]);
    ctx->tables[idx] = t;
    return 0;
}

int32_t rt_table_setup(rt_ctx *ctx, uint32_t idx, uint32_t min, uint32_t max) {
    if (idx >= ctx->ntables)
        return -1;
    rt_table *t = rt_table_new(min, max);
    if (!t)
        return -1;
    int32_t st = rt_table_attach(ctx, idx, t);
    rt_table_release(t);
    return st;
}

int32_t rt_segment_setup(rt_ctx *ctx, int32_t is_elem, uint32_t idx, const uint8_t *data,
                         uint32_t len) {
    rt_segment *s;
    size_t bytes;
    if (is_elem) {
        if (idx >= ctx->nelems)
            return -1;
        s = &ctx->elems[idx];
        bytes = (size_t)len * sizeof(uint64_t);
    } else {
        if (idx >= ctx->ndatas)
            return -1;
        s = &ctx->datas[idx];
        bytes = len;
    }
    s->data = malloc(bytes ? bytes : 1);
    if (!s->data)
        return -1;
    if (bytes)
        memcpy(s->data, data, bytes);
    s->len = len;
    s->dropped = 0;
    return 0;
}

/* -- traps and invocation ------------------------------------------------------------ */

void rt_enter(rt_ctx *caller, rt_ctx *callee, rt_link *link, uint32_t depth) {
    link->caller = caller;
    link->saved_link = callee->link;
    link->saved_limit = callee->stack_limit;
    link->saved_fuel = callee->fuel;
    link->saved_callee = caller->callee;
    link->depth = depth;
    link->pad = 0;
    callee->link = link;
    callee->stack_limit = caller->stack_limit;
    callee->fuel = caller->fuel;
    /* The run's interrupt state goes along (a flag left over from an earlier run goes). */
    __atomic_store_n(&callee->interrupt, __atomic_load_n(&caller->interrupt, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&caller->callee, callee, __ATOMIC_RELEASE);
}

void rt_leave(rt_ctx *caller, rt_ctx *callee, rt_link *link) {
    __atomic_store_n(&caller->callee, link->saved_callee, __ATOMIC_RELEASE);
    caller->fuel = callee->fuel;
    callee->fuel = link->saved_fuel;
    callee->stack_limit = link->saved_limit;
    callee->link = link->saved_link;
}

void rt_interrupt(rt_ctx *ctx) {
    /* Bounded: code of A may call into B which calls back into A (a cycle of pointers). */
    for (int hops = 0; ctx && hops < 256; hops++) {
        __atomic_store_n(&ctx->interrupt, 1, __ATOMIC_RELAXED);
        ctx = __atomic_load_n(&ctx->callee, __ATOMIC_ACQUIRE);
    }
}

void rt_trap(rt_ctx *ctx, int32_t kind, int32_t func, int32_t pc, uint32_t depth) {
    rt_ctx *origin = ctx;
    /* Code of another instance called into this one: undo every crossing, innermost
     * first, and report the trap to the context rt_invoke runs (at the crossing's call
     * site: the callee's frames are not in that context's records). */
    while (ctx->link) {
        rt_link *l = ctx->link;
        rt_leave(l->caller, ctx, l);
        func = -1;
        pc = -1;
        depth = l->depth;
        if (kind == RT_EXIT)
            l->caller->exit_code = ctx->exit_code;
        ctx = l->caller;
    }
    ctx->trap_origin = origin;
    ctx->trap_kind = kind;
    ctx->trap_func = func;
    ctx->trap_pc = pc;
    ctx->trap_depth = depth;
    longjmp(*(jmp_buf *)ctx->jb, kind ? kind : RT_TRAP_HOST);
}

static uintptr_t stack_low(void) {
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    if (pthread_attr_getstack(&attr, &addr, &size) != 0)
        addr = NULL;
    pthread_attr_destroy(&attr);
    return (uintptr_t)addr;
}

int32_t rt_invoke(rt_ctx *ctx, void *fn, uint64_t *io) {
    jmp_buf jb;
    void *volatile saved = ctx->jb;
    volatile uintptr_t saved_limit = ctx->stack_limit;
    uint64_t *volatile saved_entry = ctx->entry_frame;
    /* A run of its own, even while another instance's code called into this one. */
    rt_link *volatile saved_link = ctx->link;
    ctx->link = NULL;
    if (saved == NULL) {
        /* The outermost entry: the guest may use this thread's stack down to a margin
         * kept for host calls (Python needs room to run callbacks). */
        uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        uintptr_t low = stack_low();
        uintptr_t limit = low ? low + STACK_MARGIN : here - (1u << 20);
        if (ctx->stack_budget && here - ctx->stack_budget > limit)
            limit = here - ctx->stack_budget;
        ctx->stack_limit = limit;
    }
    ctx->jb = &jb;
    int32_t kind = setjmp(jb);
    if (kind == 0) {
        ((void (*)(rt_ctx *, uint64_t *))fn)(ctx, io);
        ctx->trap_kind = 0;
    }
    ctx->jb = saved;
    ctx->stack_limit = saved_limit;
    ctx->entry_frame = saved_entry; /* also after a trap through a host call */
    ctx->link = saved_link;
    return kind;
}

/* -- bulk memory ------------------------------------------------------------------------ */

static inline int in_bounds(uint64_t start, uint64_t n, uint64_t size) {
    return start + n <= size;
}

int32_t rt_memory_copy(rt_ctx *ctx, uint32_t dst_mem, uint32_t src_mem, uint32_t dst,
                       uint32_t src, uint32_t n) {
    rt_memory *d = ctx->mems[dst_mem], *s = ctx->mems[src_mem];
    if (!in_bounds(dst, n, d->size) || !in_bounds(src, n, s->size))
        return RT_TRAP_MEMORY_OOB;
    if (n)
        memmove(d->base + dst, s->base + src, n);
    return 0;
}

int32_t rt_memory_fill(rt_ctx *ctx, uint32_t mem, uint32_t dst, uint32_t value, uint32_t n) {
    rt_memory *m = ctx->mems[mem];
    if (!in_bounds(dst, n, m->size))
        return RT_TRAP_MEMORY_OOB;
    if (n)
        memset(m->base + dst, (int)(value & 0xFF), n);
    return 0;
}

int32_t rt_memory_init(rt_ctx *ctx, uint32_t mem, uint32_t seg, uint32_t dst, uint32_t src,
                       uint32_t n) {
    rt_memory *m = ctx->mems[mem];
    rt_segment *s = &ctx->datas[seg];
    uint32_t len = s->dropped ? 0 : s->len;
    if (!in_bounds(src, n, len) || !in_bounds(dst, n, m->size))
        return RT_TRAP_MEMORY_OOB;
    if (n)
        memcpy(m->base + dst, s->data + src, n);
    return 0;
}

void rt_data_drop(rt_ctx *ctx, uint32_t seg) { ctx->datas[seg].dropped = 1; }

/* -- tables ------------------------------------------------------------------------------ */

int32_t rt_table_grow(rt_ctx *ctx, uint32_t table, uint64_t init, uint32_t delta) {
    return rt_table_grow_object(ctx->tables[table], init, delta);
}

int32_t rt_table_grow_object(rt_table *t, uint64_t init, uint32_t delta) {
    uint32_t old = t->size;
    if ((uint64_t)delta > (uint64_t)t->max - old)
        return -1;
    if (delta == 0)
        return (int32_t)old;
    uint64_t *elems = realloc(t->elems, ((size_t)old + delta) * sizeof(uint64_t));
    if (!elems)
        return -1;
    for (uint32_t i = 0; i < delta; i++)
        elems[old + i] = init;
    t->elems = elems;
    t->size = old + delta;
    return (int32_t)old;
}

int32_t rt_table_fill(rt_ctx *ctx, uint32_t table, uint32_t dst, uint64_t value, uint32_t n) {
    rt_table *t = ctx->tables[table];
    if (!in_bounds(dst, n, t->size))
        return RT_TRAP_TABLE_OOB;
    for (uint32_t i = 0; i < n; i++)
        t->elems[dst + i] = value;
    return 0;
}

int32_t rt_table_copy(rt_ctx *ctx, uint32_t dst_table, uint32_t src_table, uint32_t dst,
                      uint32_t src, uint32_t n) {
    rt_table *d = ctx->tables[dst_table], *s = ctx->tables[src_table];
    if (!in_bounds(dst, n, d->size) || !in_bounds(src, n, s->size))
        return RT_TRAP_TABLE_OOB;
    if (n)
        memmove(d->elems + dst, s->elems + src, (size_t)n * sizeof(uint64_t));
    return 0;
}

int32_t rt_table_init(rt_ctx *ctx, uint32_t table, uint32_t seg, uint32_t dst, uint32_t src,
                      uint32_t n) {
    rt_table *t = ctx->tables[table];
    rt_segment *s = &ctx->elems[seg];
    uint32_t len = s->dropped ? 0 : s->len;
    if (!in_bounds(src, n, len) || !in_bounds(dst, n, t->size))
        return RT_TRAP_TABLE_OOB;
    if (n)
        memcpy(t->elems + dst, (uint64_t *)s->data + src, (size_t)n * sizeof(uint64_t));
    return 0;
}

void rt_elem_drop(rt_ctx *ctx, uint32_t seg) { ctx->elems[seg].dropped = 1; }

/* -- host calls ---------------------------------------------------------------------------- */

int32_t rt_host_call(rt_ctx *ctx, uint32_t import_index, uint64_t *io, uint32_t n) {
    ctx->calls_to_host++;
    return rt_py_callback(ctx->py_handle, RT_HOST_IMPORT, import_index, io, n);
}

int32_t rt_probe_call(rt_ctx *ctx, uint32_t slot, uint64_t *io, uint32_t n) {
    ctx->calls_to_host++;
    return rt_py_callback(ctx->py_handle, RT_HOST_PROBE, slot, io, n);
}
