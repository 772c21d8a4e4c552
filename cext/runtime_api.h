/* The C runtime of the native backend: the declarations shared with Python.
 *
 * This file is both a C header (included by runtime.c and wasi.c) and the
 * cffi cdef (build_runtime.py feeds it to cffi), so it holds only what cffi's
 * parser understands: no #include, no macros with values, fixed-size types.
 *
 * JIT-compiled functions have the signature
 *     RESULT f(rt_ctx *ctx, uint64_t *frame, PARAMS...)
 * where `frame` is &ctx->frames[depth - 1], the caller's slot (see lower.py)
 * and reach everything of their instance through `ctx`; the lowering reads
 * the field offsets below through cffi's `offsetof`, so this is the one
 * place the layout is written down.
 *
 * Memories and tables are objects of their own, shared between instances: a
 * context points to them (`mems[i]`, `tables[i]`) and holds a reference on
 * each (`refs`; rt_*_release frees at zero), so an instance that imports
 * another's memory or table sees the same bytes and elements, and freeing
 * either instance first is safe. A funcref carries its instance's context;
 * a call_indirect into another instance's function goes through
 * rt_enter/rt_leave (an rt_link on the caller's stack), which hand the
 * callee the caller's stack limit and fuel, and let rt_trap unwind to the
 * rt_invoke that started the run.
 */

typedef struct rt_memory {
    uint8_t *base;          /* never moves: the whole maximum is reserved up front */
    uint64_t size;          /* accessible bytes (pages * 65536) */
    uint64_t max_pages;     /* growth limit */
    uint64_t reserved;      /* bytes of address space reserved at base */
    uint64_t refs;          /* references: contexts using it and host handles */
    void *block;            /* an inline state memory: the mapping holding its context and
                               its bytes (unmapped by the last release), else NULL */
    uint64_t block_size;
    uint64_t **mirrors;     /* copies of `size` that contexts hold (rt_ctx.mem_sizes slots):
                               every change of `size` updates them */
    uint32_t nmirrors;
    uint32_t mirrors_cap;
} rt_memory;

typedef struct rt_funcref {
    void *code;             /* the function's code: RESULT f(rt_ctx*, uint32_t, PARAMS...) */
    struct rt_ctx *ctx;     /* the instance it belongs to */
    uint32_t type_id;       /* canonical signature id, checked by call_indirect */
    uint32_t index;         /* function index in its module */
} rt_funcref;

typedef struct rt_table {
    uint64_t *elems;        /* references: rt_funcref* as an integer, or externref handles */
    uint32_t size;
    uint32_t max;           /* growth limit */
    uint64_t refs;          /* references: contexts using it and host handles */
} rt_table;

typedef struct rt_segment {
    uint8_t *data;          /* bytes of a data segment, or uint64_t refs of an elem segment */
    uint32_t len;           /* bytes, or elements */
    uint32_t dropped;
} rt_segment;

typedef struct rt_link {
    struct rt_ctx *caller;  /* the instance whose code called into another's */
    struct rt_link *saved_link;
    uintptr_t saved_limit;  /* the callee's own stack_limit and fuel, restored after */
    int64_t saved_fuel;
    struct rt_ctx *saved_callee; /* the caller's `callee` before this crossing */
    uint32_t depth;         /* the callee's call depth (the caller recorded frames below) */
    uint32_t pad;
} rt_link;

typedef struct rt_ctx {
    rt_memory **mems;       /* memories[i], each holding one reference from this context */
    uint64_t *globals;      /* one 8-byte slot per global (bit patterns); an imported mutable
                               global's slot holds the address of the exporter's slot */
    rt_table **tables;      /* tables[i], each holding one reference from this context */
    rt_funcref *funcs;      /* one descriptor per function (imports first) */
    uint64_t *frames;       /* frames[d]: module offset of the call made at depth d */
    uintptr_t stack_limit;  /* the guest traps when its stack pointer goes below this */
    rt_segment *datas;
    rt_segment *elems;
    int64_t fuel;           /* fuel left when metering is compiled in (traps below 0) */
    uint32_t nmems;
    uint32_t ntables;
    uint32_t nglobals;
    uint32_t nfuncs;
    uint32_t ndatas;
    uint32_t nelems;
    uint32_t max_depth;     /* call-depth limit (frames has this many slots) */
    uint32_t stack_budget;  /* bytes of native stack the guest may use (0: all but a margin) */
    void *jb;               /* the innermost rt_invoke's jmp_buf */
    int32_t trap_kind;      /* RT_TRAP_* of the last unwinding */
    int32_t trap_func;
    int32_t trap_pc;
    uint32_t trap_depth;
    int32_t exit_code;      /* proc_exit's code when trap_kind is RT_EXIT */
    void *py_handle;        /* the Python instance behind host calls */
    struct rt_wasi *wasi;   /* the WASI state, or NULL */
    uint64_t calls_to_host; /* host calls made (statistics) */
    int32_t interrupt;      /* nonzero: trap with RT_TRAP_INTERRUPT at the next check; set by
                               another thread (Ctrl-C), read by generated code atomically */
    uint32_t *sig_ids;      /* type index -> process-wide signature id (call_indirect checks
                               funcref.type_id against it); set by the host */
    rt_link *link;          /* non-NULL while another instance's code called into this one */
    struct rt_ctx *trap_origin; /* the context whose code trapped (differs after a crossing) */
    rt_memory *mem_objs[4]; /* mems[i] and its base for the first RT_INLINE_MEMS memories, */
    uint8_t *mem_bases[4];  /* kept by rt_memory_attach: one load from ctx instead of three */
    uint64_t mem_sizes[4];  /* their sizes, kept by rt_memory_attach and every grow (the
                               memory's mirrors): generated code compares addresses with a
                               field of ctx, and needs no register for the memory object */
    uint64_t *frames_limit; /* frames + max_depth: generated code gets &frames[depth - 1]
                               instead of depth, and traps with RT_TRAP_STACK when its own
                               slot &frames[depth] reaches this */
    struct rt_ctx *callee;  /* the instance this one's code is calling into (rt_enter), or
                               NULL: where rt_interrupt passes an interrupt on */
    uint64_t *entry_frame;  /* what a call from the host passes as the callee's frame: frames - 1
                               (depth 0) outside runs; during a host or probe call, the caller's
                               own, so a call back into this instance continues its records
                               instead of overwriting them (rt_invoke restores it) */
} rt_ctx;

typedef struct rt_wasi rt_wasi;

/* -- instances -------------------------------------------------------------------- */
rt_ctx *rt_ctx_new(uint32_t nmems, uint32_t ntables, uint32_t nglobals, uint32_t nfuncs,
                   uint32_t ndatas, uint32_t nelems, uint32_t max_depth);
/* The same with memory `state_mem` (a defined memory of `state_pages` pages that never grows:
 * the probe state) laid out inline, at RT_STATE_OFFSET bytes after the context, so generated
 * code reaches it at a constant offset from `ctx` (no load, no register of its own). The
 * context and those bytes are one mapping: the memory object owns it and unmaps it at its
 * last release, which may come after rt_ctx_free if a host handle still holds the memory. */
rt_ctx *rt_ctx_new_inline(uint32_t nmems, uint32_t ntables, uint32_t nglobals, uint32_t nfuncs,
                          uint32_t ndatas, uint32_t nelems, uint32_t max_depth,
                          uint32_t state_mem, uint64_t state_pages);
void rt_ctx_free(rt_ctx *ctx);
int32_t rt_memory_setup(rt_ctx *ctx, uint32_t idx, uint64_t min_pages, uint64_t max_pages);
int32_t rt_table_setup(rt_ctx *ctx, uint32_t idx, uint32_t min, uint32_t max);

/* -- shared memories and tables ------------------------------------------------------
 * rt_*_new returns an object holding one reference (the caller's); rt_*_attach makes it
 * the context's memory/table `idx` and takes a reference for the context (rt_ctx_free
 * drops it). rt_memory_setup / rt_table_setup are new + attach + release. */
rt_memory *rt_memory_new(uint64_t min_pages, uint64_t max_pages);
void rt_memory_retain(rt_memory *m);
void rt_memory_release(rt_memory *m);
int32_t rt_memory_attach(rt_ctx *ctx, uint32_t idx, rt_memory *m);
int32_t rt_memory_grow_object(rt_memory *m, uint32_t delta);
rt_table *rt_table_new(uint32_t min, uint32_t max);
void rt_table_retain(rt_table *t);
void rt_table_release(rt_table *t);
int32_t rt_table_attach(rt_ctx *ctx, uint32_t idx, rt_table *t);
int32_t rt_table_grow_object(rt_table *t, uint64_t init, uint32_t delta);
int32_t rt_segment_setup(rt_ctx *ctx, int32_t is_elem, uint32_t idx, const uint8_t *data,
                         uint32_t len);

/* -- running ----------------------------------------------------------------------
 * rt_invoke calls fn(ctx, io) (a generated wrapper that reads its arguments from
 * io and writes its results there) and returns 0, or the RT_TRAP_* kind that
 * unwound it (the details are in ctx->trap_*). */
int32_t rt_invoke(rt_ctx *ctx, void *fn, uint64_t *io);
void rt_trap(rt_ctx *ctx, int32_t kind, int32_t func, int32_t pc, uint32_t depth);

/* A call from `caller`'s code into `callee`'s (a funcref of another instance): rt_enter
 * before, rt_leave after (a trap in between is unwound by rt_trap, which walks the links
 * back to the context rt_invoke started, restoring every callee on the way). */
void rt_enter(rt_ctx *caller, rt_ctx *callee, rt_link *link, uint32_t depth);
void rt_leave(rt_ctx *caller, rt_ctx *callee, rt_link *link);

/* Ctrl-C (from another thread): set the interrupt flag of ctx and of every instance its
 * code is calling into right now, so a loop in another instance reached through a shared
 * table stops too. */
void rt_interrupt(rt_ctx *ctx);

/* -- called by generated code (each returns 0 or a trap kind where it can fail) ----- */
int32_t rt_memory_grow(rt_ctx *ctx, uint32_t mem, uint32_t delta);
int32_t rt_memory_copy(rt_ctx *ctx, uint32_t dst_mem, uint32_t src_mem, uint32_t dst,
                       uint32_t src, uint32_t n);
int32_t rt_memory_fill(rt_ctx *ctx, uint32_t mem, uint32_t dst, uint32_t value, uint32_t n);
int32_t rt_memory_init(rt_ctx *ctx, uint32_t mem, uint32_t seg, uint32_t dst, uint32_t src,
                       uint32_t n);
void rt_data_drop(rt_ctx *ctx, uint32_t seg);
int32_t rt_table_grow(rt_ctx *ctx, uint32_t table, uint64_t init, uint32_t delta);
int32_t rt_table_fill(rt_ctx *ctx, uint32_t table, uint32_t dst, uint64_t value, uint32_t n);
int32_t rt_table_copy(rt_ctx *ctx, uint32_t dst_table, uint32_t src_table, uint32_t dst,
                      uint32_t src, uint32_t n);
int32_t rt_table_init(rt_ctx *ctx, uint32_t table, uint32_t seg, uint32_t dst, uint32_t src,
                      uint32_t n);
void rt_elem_drop(rt_ctx *ctx, uint32_t seg);
int32_t rt_host_call(rt_ctx *ctx, uint32_t import_index, uint64_t *io, uint32_t n);
int32_t rt_probe_call(rt_ctx *ctx, uint32_t slot, uint64_t *io, uint32_t n);

/* Host calls land in Python through `rt_py_callback(handle, kind, index, io, n)`
 * (kind: RT_HOST_IMPORT or RT_HOST_PROBE), which returns 0 or a trap kind to unwind
 * with; build_runtime.py declares it to cffi as extern "Python+C". */
int32_t rt_py_callback(void *handle, int32_t kind, uint32_t index, uint64_t *io, uint32_t n);

/* -- WASI preview1 ----------------------------------------------------------------- */
rt_wasi *rt_wasi_new(void);
void rt_wasi_free(rt_wasi *w);
int32_t rt_wasi_add_arg(rt_wasi *w, const char *arg);
int32_t rt_wasi_add_env(rt_wasi *w, const char *key_value);
int32_t rt_wasi_set_stdio(rt_wasi *w, int32_t fd, const char *path);
int32_t rt_wasi_preopen(rt_wasi *w, const char *host_path, const char *guest_path);
void *rt_wasi_lookup(const char *name);

/* The trap kinds (the Python side mirrors these numbers in backends/native/runtime.py). */
enum {
    RT_OK = 0,
    RT_TRAP_UNREACHABLE = 1,
    RT_TRAP_MEMORY_OOB = 2,
    RT_TRAP_TABLE_OOB = 3,
    RT_TRAP_NULL_ELEMENT = 4,
    RT_TRAP_BAD_SIGNATURE = 5,
    RT_TRAP_INT_OVERFLOW = 6,
    RT_TRAP_DIV_ZERO = 7,
    RT_TRAP_BAD_CONVERSION = 8,
    RT_TRAP_STACK = 9,
    RT_TRAP_HOST = 10,
    RT_EXIT = 11,
    RT_TRAP_FUEL = 12,
    RT_TRAP_NULL_REFERENCE = 13,
    RT_TRAP_INTERRUPT = 14,
    RT_HOST_IMPORT = 0,
    RT_HOST_PROBE = 1,
    RT_STATE_OFFSET = 1024, /* bytes from a context to its inline state memory */
    RT_INLINE_MEMS = 4      /* memories with a copy of their object and base in rt_ctx */
};
