/* runtime_check.c -- drives the C runtime (cext/runtime.c, cext/wasi.c) without Python or
 * the JIT, so it can run under AddressSanitizer/UBSan: memories, tables, segments, bulk
 * operations at their bounds, traps unwinding through rt_invoke, memories and tables
 * shared between contexts (freed with the last reference), calls across contexts
 * (rt_enter/rt_leave, and traps unwinding through them), and the WASI functions on a
 * temporary preopened directory. Prints "ok N" and exits 0 when every check holds. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime_api.h"

int32_t rt_wasi_fd_write(rt_ctx *, int32_t, uint32_t, uint32_t, uint32_t);
int32_t rt_wasi_fd_read(rt_ctx *, int32_t, uint32_t, uint32_t, uint32_t);
int32_t rt_wasi_path_open(rt_ctx *, int32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint64_t,
                          uint64_t, uint32_t, uint32_t);
int32_t rt_wasi_fd_close(rt_ctx *, int32_t);
int32_t rt_wasi_fd_readdir(rt_ctx *, int32_t, uint32_t, uint32_t, uint64_t, uint32_t);
int32_t rt_wasi_args_sizes_get(rt_ctx *, uint32_t, uint32_t);
int32_t rt_wasi_args_get(rt_ctx *, uint32_t, uint32_t);
int32_t rt_wasi_fd_prestat_get(rt_ctx *, int32_t, uint32_t);
int32_t rt_wasi_fd_seek(rt_ctx *, int32_t, int64_t, uint32_t, uint32_t);
void rt_wasi_proc_exit(rt_ctx *, int32_t);

int32_t rt_py_callback(void *handle, int32_t kind, uint32_t index, uint64_t *io, uint32_t n) {
    (void)handle; (void)kind; (void)index; (void)io; (void)n;
    return 0;
}

static int checks, failed;
#define CHECK(c) do { checks++; if (!(c)) { failed++; printf("FAIL line %d: %s\n", __LINE__, #c); } } while (0)

static void trapper(rt_ctx *ctx, uint64_t *io) { (void)io; rt_trap(ctx, RT_TRAP_DIV_ZERO, 3, 7, 0); }
static void exiter(rt_ctx *ctx, uint64_t *io) { (void)io; rt_wasi_proc_exit(ctx, 42); }
static void nested(rt_ctx *ctx, uint64_t *io) {
    int32_t k = rt_invoke(ctx, (void *)trapper, io);
    io[0] = (uint64_t)k;
}

/* Cross-context calls: `other` is the callee's context, as a funcref would carry it. */
static rt_ctx *other;
static void foreign_trapper(rt_ctx *ctx, uint32_t depth) {
    rt_trap(ctx, RT_TRAP_UNREACHABLE, 1, 2, depth);
}
static void crossing(rt_ctx *ctx, uint64_t *io) {
    rt_link link;
    other->fuel = 5;
    rt_enter(ctx, other, &link, 4);
    io[1] = other->stack_limit == ctx->stack_limit && other->link == &link && other->fuel == 100;
    other->fuel -= 10; /* the callee spends the caller's fuel */
    rt_leave(ctx, other, &link);
    io[2] = ctx->fuel == 90 && other->fuel == 5 && other->link == NULL;
    rt_enter(ctx, other, &link, 4);
    foreign_trapper(other, 4);
}

static void check_inline_state(void) {
    /* The probe-state memory laid out after its context (rt_ctx_new_inline). */
    CHECK(rt_ctx_new_inline(1, 0, 0, 0, 0, 0, 10, 1, 1) == NULL);
    CHECK(rt_ctx_new_inline(2, 0, 0, 0, 0, 0, 10, 1, 0) == NULL);
    rt_ctx *ctx = rt_ctx_new_inline(2, 0, 0, 0, 0, 0, 10, 1, 1);
    CHECK(ctx != NULL && ctx->mems[0] == NULL);
    rt_memory *s = ctx->mems[1];
    CHECK(s->base == (uint8_t *)ctx + RT_STATE_OFFSET && s->size == 65536 && s->refs == 1);
    CHECK(s->base[0] == 0 && s->base[65535] == 0);
    CHECK(ctx->mem_sizes[1] == 65536 && s->nmirrors == 0); /* it never grows */
    CHECK(rt_memory_setup(ctx, 0, 1, 1) == 0 && ctx->mem_sizes[0] == 65536);
    CHECK(rt_memory_fill(ctx, 1, 0, 7, 65536) == 0 && s->base[65535] == 7);
    CHECK(rt_memory_fill(ctx, 1, 1, 7, 65536) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_memory_copy(ctx, 0, 1, 0, 65534, 2) == 0 && ctx->mems[0]->base[1] == 7);
    CHECK(rt_memory_grow(ctx, 1, 1) == -1 && rt_memory_grow(ctx, 1, 0) == 1);
    rt_memory *m = rt_memory_new(1, 1);
    CHECK(rt_memory_attach(ctx, 1, m) == -1 && ctx->mems[1] == s && m->refs == 1);
    rt_memory_release(m);
    /* A host handle outliving the context keeps the bytes (and the dead context). */
    rt_memory_retain(s);
    rt_ctx_free(ctx);
    CHECK(s->refs == 1 && s->base[65535] == 7);
    rt_memory_release(s);
    /* Freed with its context when nothing else holds it. */
    ctx = rt_ctx_new_inline(1, 1, 1, 1, 1, 1, 10, 0, 2);
    CHECK(ctx != NULL && ctx->mems[0]->size == 2 * 65536);
    rt_ctx_free(ctx);
}

static void check_sharing(void) {
    rt_ctx *a = rt_ctx_new(1, 1, 0, 0, 0, 0, 10), *b = rt_ctx_new(1, 1, 0, 0, 0, 0, 10);
    CHECK(a && b);
    rt_memory *m = rt_memory_new(1, 4);
    rt_table *t = rt_table_new(2, 8);
    CHECK(m && t && m->refs == 1 && t->refs == 1);
    CHECK(rt_memory_new(5, 4) == NULL && rt_table_new(20000000u, 30000000u) == NULL);
    CHECK(rt_memory_attach(a, 0, m) == 0 && rt_memory_attach(b, 0, m) == 0 && m->refs == 3);
    CHECK(rt_table_attach(a, 0, t) == 0 && rt_table_attach(b, 0, t) == 0 && t->refs == 3);
    CHECK(rt_memory_attach(a, 1, m) == -1 && rt_table_attach(a, 1, t) == -1);
    /* Each context's copy of the size follows every grow and leaves with the context. */
    CHECK(m->nmirrors == 2 && a->mem_sizes[0] == 65536 && b->mem_sizes[0] == 65536);
    rt_memory_release(m);
    rt_table_release(t);
    CHECK(rt_memory_grow(a, 0, 1) == 1 && b->mems[0]->size == 2 * 65536);
    CHECK(a->mem_sizes[0] == 2 * 65536 && b->mem_sizes[0] == 2 * 65536);
    CHECK(rt_table_grow(b, 0, 7, 3) == 2 && a->tables[0]->size == 5 && a->tables[0]->elems[4] == 7);
    a->mems[0]->base[2 * 65536 - 1] = 3;
    rt_ctx_free(a); /* b still holds both */
    CHECK(b->mems[0]->nmirrors == 1);
    CHECK(rt_memory_grow_object(b->mems[0], 1) == 2 && b->mem_sizes[0] == 3 * 65536);
    CHECK(rt_memory_attach(b, 0, b->mems[0]) == 0 && b->mems[0]->nmirrors == 1 &&
          b->mems[0]->refs == 1);
    CHECK(b->mems[0]->base[2 * 65536 - 1] == 3 && b->tables[0]->elems[4] == 7);
    CHECK(rt_memory_fill(b, 0, 0, 1, 2 * 65536) == 0 && rt_table_fill(b, 0, 0, 9, 5) == 0);

    /* A call into another context, returning and trapping. */
    other = rt_ctx_new(0, 0, 0, 0, 0, 0, 10);
    b->fuel = 100;
    uint64_t io[4] = {0};
    CHECK(rt_invoke(b, (void *)crossing, io) == RT_TRAP_UNREACHABLE);
    CHECK(io[1] == 1 && io[2] == 1);
    CHECK(b->trap_func == -1 && b->trap_depth == 4 && b->trap_origin == other);
    CHECK(other->link == NULL && other->fuel == 5 && b->jb == NULL);
    rt_ctx_free(other);
    rt_ctx_free(b);
}

int main(void) {
    rt_ctx *ctx = rt_ctx_new(2, 2, 1, 1, 1, 1, 100);
    CHECK(ctx != NULL && ctx->frames_limit == ctx->frames + 100);
    CHECK(rt_memory_setup(ctx, 0, 1, 3) == 0);
    CHECK(rt_memory_setup(ctx, 1, 0, 0) == 0);
    CHECK(rt_memory_grow(ctx, 0, 1) == 1);
    CHECK(rt_memory_grow(ctx, 0, 2) == -1);
    CHECK(rt_memory_grow(ctx, 0, 0xFFFFFFFFu) == -1);
    CHECK(rt_memory_grow(ctx, 1, 1) == -1);
    CHECK(ctx->mems[0]->size == 2 * 65536);
    ctx->mems[0]->base[2 * 65536 - 1] = 9;
    CHECK(rt_memory_fill(ctx, 0, 0, 0xAB, 2 * 65536) == 0);
    CHECK(rt_memory_fill(ctx, 0, 1, 0, 2 * 65536) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_memory_fill(ctx, 0, 0xFFFFFFFFu, 0, 2) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_memory_copy(ctx, 0, 0, 10, 0, 100) == 0);
    CHECK(rt_memory_copy(ctx, 0, 0, 0, 2 * 65536 - 5, 6) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_memory_copy(ctx, 1, 0, 0, 0, 1) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_segment_setup(ctx, 0, 0, (const uint8_t *)"hello", 5) == 0);
    CHECK(rt_memory_init(ctx, 0, 0, 100, 1, 4) == 0 && memcmp(ctx->mems[0]->base + 100, "ello", 4) == 0);
    CHECK(rt_memory_init(ctx, 0, 0, 100, 2, 4) == RT_TRAP_MEMORY_OOB);
    rt_data_drop(ctx, 0);
    CHECK(rt_memory_init(ctx, 0, 0, 100, 0, 1) == RT_TRAP_MEMORY_OOB);
    CHECK(rt_memory_init(ctx, 0, 0, 100, 0, 0) == 0);
    CHECK(rt_table_setup(ctx, 0, 2, 4) == 0);
    CHECK(rt_table_setup(ctx, 1, 0, 0xFFFFFFFFu) == 0);
    CHECK(rt_table_grow(ctx, 0, 7, 2) == 2);
    CHECK(rt_table_grow(ctx, 0, 7, 1) == -1);
    CHECK(rt_table_grow(ctx, 1, 0, 0xFFFFFFFFu) == -1);
    CHECK(ctx->tables[0]->elems[3] == 7);
    CHECK(rt_table_fill(ctx, 0, 1, 5, 3) == 0 && ctx->tables[0]->elems[1] == 5);
    CHECK(rt_table_fill(ctx, 0, 2, 5, 3) == RT_TRAP_TABLE_OOB);
    CHECK(rt_table_copy(ctx, 0, 0, 0, 1, 3) == 0);
    CHECK(rt_table_copy(ctx, 1, 0, 0, 0, 1) == RT_TRAP_TABLE_OOB);
    uint64_t refs[2] = {11, 12};
    CHECK(rt_segment_setup(ctx, 1, 0, (const uint8_t *)refs, 2) == 0);
    CHECK(rt_table_init(ctx, 0, 0, 2, 0, 2) == 0 && ctx->tables[0]->elems[3] == 12);
    CHECK(rt_table_init(ctx, 0, 0, 3, 0, 2) == RT_TRAP_TABLE_OOB);
    rt_elem_drop(ctx, 0);
    CHECK(rt_table_init(ctx, 0, 0, 0, 0, 1) == RT_TRAP_TABLE_OOB);

    uint64_t io[4] = {0};
    CHECK(rt_invoke(ctx, (void *)trapper, io) == RT_TRAP_DIV_ZERO);
    CHECK(ctx->trap_func == 3 && ctx->trap_pc == 7 && ctx->jb == NULL);
    CHECK(rt_invoke(ctx, (void *)nested, io) == 0 && io[0] == RT_TRAP_DIV_ZERO);

    /* WASI on a temporary directory */
    char dir[] = "/tmp/probes-rtcheck-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    rt_wasi *w = rt_wasi_new();
    ctx->wasi = w;
    CHECK(rt_wasi_add_arg(w, "prog") == 0 && rt_wasi_add_arg(w, "arg1") == 0);
    CHECK(rt_wasi_preopen(w, dir, "/sandbox") == 0);
    uint8_t *mem = ctx->mems[0]->base;
    CHECK(rt_wasi_args_sizes_get(ctx, 0, 4) == 0 && *(uint32_t *)mem == 2);
    CHECK(rt_wasi_args_get(ctx, 16, 64) == 0 && strcmp((char *)mem + 64, "prog") == 0);
    CHECK(rt_wasi_args_get(ctx, 2 * 65536 - 4, 64) != 0);
    CHECK(rt_wasi_fd_prestat_get(ctx, 3, 200) == 0 && *(uint32_t *)(mem + 204) == 8);
    CHECK(rt_wasi_fd_prestat_get(ctx, 4, 200) == 8);
    memcpy(mem + 300, "f.txt", 5);
    uint64_t rw = (1ULL << 1) | (1ULL << 6);
    CHECK(rt_wasi_path_open(ctx, 3, 0, 300, 5, 1, rw, 0, 0, 400) == 0);
    int32_t fd = *(int32_t *)(mem + 400);
    CHECK(fd == 4);
    memcpy(mem + 500, "data!", 5);
    *(uint32_t *)(mem + 600) = 500; *(uint32_t *)(mem + 604) = 5;
    CHECK(rt_wasi_fd_write(ctx, fd, 600, 1, 608) == 0 && *(uint32_t *)(mem + 608) == 5);
    *(uint32_t *)(mem + 604) = 0x7FFFFFFF;
    CHECK(rt_wasi_fd_write(ctx, fd, 600, 1, 608) == 21);  /* EFAULT: buffer past memory */
    CHECK(rt_wasi_fd_seek(ctx, fd, 0, 0, 616) == 0);
    *(uint32_t *)(mem + 600) = 700; *(uint32_t *)(mem + 604) = 16;
    CHECK(rt_wasi_fd_read(ctx, fd, 600, 1, 608) == 0 && *(uint32_t *)(mem + 608) == 5);
    CHECK(memcmp(mem + 700, "data!", 5) == 0);
    CHECK(rt_wasi_fd_close(ctx, fd) == 0 && rt_wasi_fd_close(ctx, fd) == 8);
    memcpy(mem + 300, "../etc/passwd", 13);
    CHECK(rt_wasi_path_open(ctx, 3, 0, 300, 13, 0, rw, 0, 0, 400) == 76);
    memcpy(mem + 300, "/etc/passwd", 11);
    CHECK(rt_wasi_path_open(ctx, 3, 0, 300, 11, 0, rw, 0, 0, 400) == 76);
    CHECK(rt_wasi_fd_readdir(ctx, 3, 1000, 256, 0, 1300) == 0 && *(uint32_t *)(mem + 1300) > 24);
    CHECK(rt_wasi_fd_readdir(ctx, 3, 2 * 65536 - 8, 256, 0, 1300) == 21);
    CHECK(rt_invoke(ctx, (void *)exiter, io) == RT_EXIT && ctx->exit_code == 42);
    char path[64];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    unlink(path);
    rmdir(dir);

    ctx->wasi = NULL;
    rt_wasi_free(w);
    rt_ctx_free(ctx);
    check_sharing();
    check_inline_state();
    printf("%s %d checks, %d failed\n", failed ? "FAILED" : "ok", checks, failed);
    return failed != 0;
}
