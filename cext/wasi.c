/* A WASI preview1 subset in C, enough for C programs built for wasm32-wasi:
 * args, environ, clocks, random, fd_read/write/seek/close/fdstat/filestat,
 * preopened directories (prestat, path_open, fd_readdir, path_filestat_get,
 * directory create/remove, unlink), poll_oneoff on clocks, proc_exit.
 *
 * Generated code calls `rt_wasi_<name>(ctx, args...)` directly for imports of
 * module wasi_snapshot_preview1 (see rt_wasi_lookup). Guest pointers are
 * checked against memory 0 before every access; paths are resolved beneath
 * their preopened directory (openat2 RESOLVE_BENEATH where the kernel has it,
 * and ".." never climbs above the directory in any case).
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include "runtime_api.h"

/* WASI errno values */
#define W_ESUCCESS 0
#define W_E2BIG 1
#define W_EACCES 2
#define W_EAGAIN 6
#define W_EBADF 8
#define W_EEXIST 20
#define W_EFAULT 21
#define W_EINVAL 28
#define W_EIO 29
#define W_EISDIR 31
#define W_ELOOP 32
#define W_EMFILE 33
#define W_ENAMETOOLONG 37
#define W_ENOENT 44
#define W_ENOMEM 48
#define W_ENOSPC 51
#define W_ENOSYS 52
#define W_ENOTDIR 54
#define W_ENOTEMPTY 55
#define W_ENOTSUP 58
#define W_EPERM 63
#define W_ESPIPE 70
#define W_EXDEV 75
#define W_ENOTCAPABLE 76

#define FT_UNKNOWN 0
#define FT_BLOCK 1
#define FT_CHAR 2
#define FT_DIR 3
#define FT_FILE 4
#define FT_SOCK_STREAM 6
#define FT_SYMLINK 7

#define ALL_RIGHTS 0x1FFFFFFFULL
#define MAX_FDS 1024

typedef struct rt_fd {
    int host;       /* host descriptor, -1 when the slot is free */
    int own;        /* close host on fd_close / teardown */
    int is_dir;
    char *preopen;  /* guest name of a preopened directory */
} rt_fd;

struct rt_wasi {
    char **args;
    uint32_t nargs;
    char **envs;
    uint32_t nenvs;
    rt_fd fds[MAX_FDS];
    uint32_t nfds;  /* slots in use: max index + 1 */
};

static int32_t errno_to_wasi(int e) {
    switch (e) {
    case 0: return W_ESUCCESS;
    case E2BIG: return W_E2BIG;
    case EACCES: return W_EACCES;
    case EAGAIN: return W_EAGAIN;
    case EBADF: return W_EBADF;
    case EEXIST: return W_EEXIST;
    case EFAULT: return W_EFAULT;
    case EINVAL: return W_EINVAL;
    case EISDIR: return W_EISDIR;
    case ELOOP: return W_ELOOP;
    case EMFILE: return W_EMFILE;
    case ENAMETOOLONG: return W_ENAMETOOLONG;
    case ENOENT: return W_ENOENT;
    case ENOMEM: return W_ENOMEM;
    case ENOSPC: return W_ENOSPC;
    case ENOSYS: return W_ENOSYS;
    case ENOTDIR: return W_ENOTDIR;
    case ENOTEMPTY: return W_ENOTEMPTY;
    case EOPNOTSUPP: return W_ENOTSUP;
    case EPERM: return W_EPERM;
    case ESPIPE: return W_ESPIPE;
    case EXDEV: return W_EXDEV;
    default: return W_EIO;
    }
}

/* -- setup (from Python) ------------------------------------------------------------ */

rt_wasi *rt_wasi_new(void) {
    rt_wasi *w = calloc(1, sizeof(rt_wasi));
    if (!w)
        return NULL;
    for (int i = 0; i < MAX_FDS; i++)
        w->fds[i].host = -1;
    for (int i = 0; i < 3; i++)
        w->fds[i].host = i;
    w->nfds = 3;
    return w;
}

void rt_wasi_free(rt_wasi *w) {
    if (!w)
        return;
    for (uint32_t i = 0; i < w->nargs; i++)
        free(w->args[i]);
    for (uint32_t i = 0; i < w->nenvs; i++)
        free(w->envs[i]);
    free(w->args);
    free(w->envs);
    for (uint32_t i = 0; i < w->nfds; i++) {
        if (w->fds[i].host >= 0 && w->fds[i].own)
            close(w->fds[i].host);
        free(w->fds[i].preopen);
    }
    free(w);
}

static int32_t push_string(char ***list, uint32_t *n, const char *s) {
    char **grown = realloc(*list, (*n + 1) * sizeof(char *));
    if (!grown)
        return -1;
    *list = grown;
    grown[*n] = strdup(s);
    if (!grown[*n])
        return -1;
    (*n)++;
    return 0;
}

int32_t rt_wasi_add_arg(rt_wasi *w, const char *arg) { return push_string(&w->args, &w->nargs, arg); }

int32_t rt_wasi_add_env(rt_wasi *w, const char *kv) { return push_string(&w->envs, &w->nenvs, kv); }

int32_t rt_wasi_set_stdio(rt_wasi *w, int32_t fd, const char *path) {
    if (fd < 0 || fd > 2)
        return -1;
    int flags = fd == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_TRUNC);
    int h = open(path, flags | O_CLOEXEC, 0644);
    if (h < 0)
        return -1;
    if (w->fds[fd].own && w->fds[fd].host >= 0)
        close(w->fds[fd].host);
    w->fds[fd].host = h;
    w->fds[fd].own = 1;
    return 0;
}

int32_t rt_wasi_preopen(rt_wasi *w, const char *host_path, const char *guest_path) {
    if (w->nfds >= MAX_FDS)
        return -1;
    int h = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (h < 0)
        return -1;
    rt_fd *f = &w->fds[w->nfds++];
    f->host = h;
    f->own = 1;
    f->is_dir = 1;
    f->preopen = strdup(guest_path);
    return f->preopen ? 0 : -1;
}

/* -- guest memory ----------------------------------------------------------------------- */

static inline uint8_t *gptr(rt_ctx *ctx, uint32_t addr, uint64_t len) {
    if (ctx->nmems == 0 || !ctx->mems[0])
        return NULL;
    rt_memory *m = ctx->mems[0];
    if ((uint64_t)addr + len > m->size)
        return NULL;
    return m->base + addr;
}

#define GET(ptr, addr, len)                                                                 \
    uint8_t *ptr = gptr(ctx, (addr), (len));                                                \
    if (!ptr)                                                                               \
        return W_EFAULT;

static inline void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static rt_fd *get_fd(rt_ctx *ctx, int32_t fd) {
    rt_wasi *w = ctx->wasi;
    if (!w || fd < 0 || (uint32_t)fd >= w->nfds || w->fds[fd].host < 0)
        return NULL;
    return &w->fds[fd];
}

/* -- args and environment ----------------------------------------------------------------- */

static int32_t strings_sizes(rt_ctx *ctx, char **list, uint32_t n, uint32_t count_ptr,
                             uint32_t size_ptr) {
    GET(c, count_ptr, 4);
    GET(s, size_ptr, 4);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += strlen(list[i]) + 1;
    put_u32(c, n);
    put_u32(s, (uint32_t)total);
    return 0;
}

static int32_t strings_get(rt_ctx *ctx, char **list, uint32_t n, uint32_t ptrs, uint32_t buf) {
    GET(p, ptrs, (uint64_t)n * 4);
    uint32_t at = buf;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]) + 1;
        GET(dst, at, len);
        memcpy(dst, list[i], len);
        put_u32(p + 4 * i, at);
        at += (uint32_t)len;
    }
    return 0;
}

int32_t rt_wasi_args_sizes_get(rt_ctx *ctx, uint32_t argc, uint32_t size) {
    rt_wasi *w = ctx->wasi;
    return strings_sizes(ctx, w->args, w->nargs, argc, size);
}

int32_t rt_wasi_args_get(rt_ctx *ctx, uint32_t argv, uint32_t buf) {
    rt_wasi *w = ctx->wasi;
    return strings_get(ctx, w->args, w->nargs, argv, buf);
}

int32_t rt_wasi_environ_sizes_get(rt_ctx *ctx, uint32_t count, uint32_t size) {
    rt_wasi *w = ctx->wasi;
    return strings_sizes(ctx, w->envs, w->nenvs, count, size);
}

int32_t rt_wasi_environ_get(rt_ctx *ctx, uint32_t env, uint32_t buf) {
    rt_wasi *w = ctx->wasi;
    return strings_get(ctx, w->envs, w->nenvs, env, buf);
}

/* -- clocks and random ---------------------------------------------------------------- */

static int clock_of(uint32_t id, clockid_t *out) {
    switch (id) {
    case 0: *out = CLOCK_REALTIME; return 1;
    case 1: *out = CLOCK_MONOTONIC; return 1;
    case 2: *out = CLOCK_PROCESS_CPUTIME_ID; return 1;
    case 3: *out = CLOCK_THREAD_CPUTIME_ID; return 1;
    default: return 0;
    }
}

int32_t rt_wasi_clock_res_get(rt_ctx *ctx, uint32_t id, uint32_t out) {
    clockid_t c;
    if (!clock_of(id, &c))
        return W_EINVAL;
    GET(p, out, 8);
    struct timespec ts;
    if (clock_getres(c, &ts) != 0)
        return errno_to_wasi(errno);
    put_u64(p, (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
    return 0;
}

int32_t rt_wasi_clock_time_get(rt_ctx *ctx, uint32_t id, uint64_t precision, uint32_t out) {
    (void)precision;
    clockid_t c;
    if (!clock_of(id, &c))
        return W_EINVAL;
    GET(p, out, 8);
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return errno_to_wasi(errno);
    put_u64(p, (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
    return 0;
}

int32_t rt_wasi_random_get(rt_ctx *ctx, uint32_t buf, uint32_t len) {
    GET(p, buf, len);
    uint32_t done = 0;
    while (done < len) {
        ssize_t r = getrandom(p + done, len - done, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno_to_wasi(errno);
        }
        done += (uint32_t)r;
    }
    return 0;
}

int32_t rt_wasi_sched_yield(rt_ctx *ctx) {
    (void)ctx;
    return 0;
}

/* -- file descriptors ------------------------------------------------------------------ */

/* The first non-empty buffer of a guest iovec array (wasmtime transfers one buffer per
 * call too, and libc loops over short transfers: the guest's behaviour, and so its
 * instruction counts, match). */
static int32_t first_iovec(rt_ctx *ctx, uint32_t iovs, uint32_t n, struct iovec *out) {
    GET(p, iovs, (uint64_t)n * 8);
    out->iov_base = NULL;
    out->iov_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t buf = get_u32(p + 8 * i), len = get_u32(p + 8 * i + 4);
        uint8_t *b = gptr(ctx, buf, len);
        if (!b)
            return W_EFAULT;
        if (len && !out->iov_base) {
            out->iov_base = b;
            out->iov_len = len;
        }
    }
    return 0;
}

int32_t rt_wasi_fd_write(rt_ctx *ctx, int32_t fd, uint32_t iovs, uint32_t n, uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    if (f->is_dir)
        return W_EISDIR;
    GET(o, out, 4);
    struct iovec v;
    int32_t err = first_iovec(ctx, iovs, n, &v);
    if (err)
        return err;
    ssize_t r = 0;
    if (v.iov_len) {
        do {
            r = write(f->host, v.iov_base, v.iov_len);
        } while (r < 0 && errno == EINTR);
    }
    if (r < 0)
        return errno_to_wasi(errno);
    put_u32(o, (uint32_t)r);
    return 0;
}

int32_t rt_wasi_fd_read(rt_ctx *ctx, int32_t fd, uint32_t iovs, uint32_t n, uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    if (f->is_dir)
        return W_EISDIR;
    GET(o, out, 4);
    struct iovec v;
    int32_t err = first_iovec(ctx, iovs, n, &v);
    if (err)
        return err;
    ssize_t r = 0;
    if (v.iov_len) {
        do {
            r = read(f->host, v.iov_base, v.iov_len);
        } while (r < 0 && errno == EINTR);
    }
    if (r < 0)
        return errno_to_wasi(errno);
    put_u32(o, (uint32_t)r);
    return 0;
}

int32_t rt_wasi_fd_pread(rt_ctx *ctx, int32_t fd, uint32_t iovs, uint32_t n, uint64_t offset,
                         uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    GET(o, out, 4);
    struct iovec v;
    int32_t err = first_iovec(ctx, iovs, n, &v);
    if (err)
        return err;
    ssize_t r = v.iov_len ? pread(f->host, v.iov_base, v.iov_len, (off_t)offset) : 0;
    if (r < 0)
        return errno_to_wasi(errno);
    put_u32(o, (uint32_t)r);
    return 0;
}

int32_t rt_wasi_fd_pwrite(rt_ctx *ctx, int32_t fd, uint32_t iovs, uint32_t n, uint64_t offset,
                          uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    GET(o, out, 4);
    struct iovec v;
    int32_t err = first_iovec(ctx, iovs, n, &v);
    if (err)
        return err;
    ssize_t r = v.iov_len ? pwrite(f->host, v.iov_base, v.iov_len, (off_t)offset) : 0;
    if (r < 0)
        return errno_to_wasi(errno);
    put_u32(o, (uint32_t)r);
    return 0;
}

int32_t rt_wasi_fd_seek(rt_ctx *ctx, int32_t fd, int64_t offset, uint32_t whence,
                        uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    if (f->is_dir)
        return W_EBADF;
    GET(o, out, 8);
    int wh;
    switch (whence) {
    case 0: wh = SEEK_SET; break;
    case 1: wh = SEEK_CUR; break;
    case 2: wh = SEEK_END; break;
    default: return W_EINVAL;
    }
    off_t r = lseek(f->host, (off_t)offset, wh);
    if (r < 0)
        return errno_to_wasi(errno);
    put_u64(o, (uint64_t)r);
    return 0;
}

int32_t rt_wasi_fd_tell(rt_ctx *ctx, int32_t fd, uint32_t out) {
    return rt_wasi_fd_seek(ctx, fd, 0, 1, out);
}

int32_t rt_wasi_fd_close(rt_ctx *ctx, int32_t fd) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    if (f->own)
        close(f->host);
    f->host = -1;
    f->own = 0;
    f->is_dir = 0;
    free(f->preopen);
    f->preopen = NULL;
    return 0;
}

int32_t rt_wasi_fd_sync(rt_ctx *ctx, int32_t fd) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    return fsync(f->host) == 0 || errno == EINVAL ? 0 : errno_to_wasi(errno);
}

int32_t rt_wasi_fd_datasync(rt_ctx *ctx, int32_t fd) { return rt_wasi_fd_sync(ctx, fd); }

static uint8_t filetype_of(mode_t mode) {
    if (S_ISREG(mode)) return FT_FILE;
    if (S_ISDIR(mode)) return FT_DIR;
    if (S_ISCHR(mode)) return FT_CHAR;
    if (S_ISBLK(mode)) return FT_BLOCK;
    if (S_ISLNK(mode)) return FT_SYMLINK;
    if (S_ISSOCK(mode)) return FT_SOCK_STREAM;
    return FT_UNKNOWN;
}

int32_t rt_wasi_fd_fdstat_get(rt_ctx *ctx, int32_t fd, uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    GET(p, out, 24);
    struct stat st;
    if (fstat(f->host, &st) != 0)
        return errno_to_wasi(errno);
    int fl = fcntl(f->host, F_GETFL);
    uint16_t flags = 0;
    if (fl >= 0) {
        if (fl & O_APPEND) flags |= 1;
        if (fl & O_NONBLOCK) flags |= 4;
    }
    memset(p, 0, 24);
    put_u16(p + 2, flags);
    if (fd <= 2 && !f->preopen) {
        /* stdio as wasmtime presents it: a character device when it is a terminal (else
         * of unknown type), with only the right to read (stdin) or write (stdout/err). */
        p[0] = isatty(f->host) ? FT_CHAR : FT_UNKNOWN;
        put_u64(p + 8, fd == 0 ? (1ULL << 1) : (1ULL << 6));
        return 0;
    }
    p[0] = filetype_of(st.st_mode);
    put_u64(p + 8, ALL_RIGHTS);
    put_u64(p + 16, ALL_RIGHTS);
    return 0;
}

int32_t rt_wasi_fd_fdstat_set_flags(rt_ctx *ctx, int32_t fd, uint32_t flags) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    int fl = fcntl(f->host, F_GETFL);
    if (fl < 0)
        return errno_to_wasi(errno);
    fl = (flags & 1) ? (fl | O_APPEND) : (fl & ~O_APPEND);
    fl = (flags & 4) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(f->host, F_SETFL, fl) == 0 ? 0 : errno_to_wasi(errno);
}

static void put_filestat(uint8_t *p, const struct stat *st) {
    memset(p, 0, 64);
    put_u64(p, (uint64_t)st->st_dev);
    put_u64(p + 8, (uint64_t)st->st_ino);
    p[16] = filetype_of(st->st_mode);
    put_u64(p + 24, (uint64_t)st->st_nlink);
    put_u64(p + 32, (uint64_t)st->st_size);
    put_u64(p + 40, (uint64_t)st->st_atim.tv_sec * 1000000000ULL + st->st_atim.tv_nsec);
    put_u64(p + 48, (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec);
    put_u64(p + 56, (uint64_t)st->st_ctim.tv_sec * 1000000000ULL + st->st_ctim.tv_nsec);
}

int32_t rt_wasi_fd_filestat_get(rt_ctx *ctx, int32_t fd, uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    GET(p, out, 64);
    struct stat st;
    if (fstat(f->host, &st) != 0)
        return errno_to_wasi(errno);
    put_filestat(p, &st);
    return 0;
}

int32_t rt_wasi_fd_filestat_set_size(rt_ctx *ctx, int32_t fd, uint64_t size) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    return ftruncate(f->host, (off_t)size) == 0 ? 0 : errno_to_wasi(errno);
}

int32_t rt_wasi_fd_prestat_get(rt_ctx *ctx, int32_t fd, uint32_t out) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f || !f->preopen)
        return W_EBADF;
    GET(p, out, 8);
    memset(p, 0, 8);
    put_u32(p + 4, (uint32_t)strlen(f->preopen));
    return 0;
}

int32_t rt_wasi_fd_prestat_dir_name(rt_ctx *ctx, int32_t fd, uint32_t path, uint32_t len) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f || !f->preopen)
        return W_EBADF;
    size_t n = strlen(f->preopen);
    if (len < n)
        return W_ENAMETOOLONG;
    GET(p, path, n);
    memcpy(p, f->preopen, n);
    return 0;
}

/* -- paths beneath a directory descriptor ------------------------------------------------ */

/* A NUL-terminated copy of a guest path that cannot leave its directory, or NULL
 * with *err set. */
static char *guest_path(rt_ctx *ctx, uint32_t addr, uint32_t len, int32_t *err) {
    uint8_t *p = gptr(ctx, addr, len);
    if (!p) {
        *err = W_EFAULT;
        return NULL;
    }
    if (memchr(p, 0, len)) {
        *err = W_EINVAL;
        return NULL;
    }
    if (len > 0 && p[0] == '/') {
        *err = W_ENOTCAPABLE;
        return NULL;
    }
    char *s = malloc((size_t)len + 2);
    if (!s) {
        *err = W_ENOMEM;
        return NULL;
    }
    memcpy(s, p, len);
    s[len] = 0;
    if (len == 0) {
        s[0] = '.';
        s[1] = 0;
    }
    /* ".." must never climb above the starting directory. */
    long depth = 0;
    for (char *c = s; *c;) {
        char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            if (--depth < 0) {
                free(s);
                *err = W_ENOTCAPABLE;
                return NULL;
            }
        } else if (n > 0 && !(n == 1 && c[0] == '.')) {
            depth++;
        }
        c += n;
        while (*c == '/')
            c++;
    }
    return s;
}

static int open_beneath(int dirfd, const char *path, int flags, mode_t mode) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (r >= 0 || errno != ENOSYS)
        return (int)r;
#endif
    return openat(dirfd, path, flags, mode);
}

static rt_fd *dir_fd(rt_ctx *ctx, int32_t fd, int32_t *err) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f) {
        *err = W_EBADF;
        return NULL;
    }
    if (!f->is_dir) {
        *err = W_ENOTDIR;
        return NULL;
    }
    return f;
}

int32_t rt_wasi_path_open(rt_ctx *ctx, int32_t dirfd, uint32_t lookup, uint32_t path,
                          uint32_t path_len, uint32_t oflags, uint64_t rights,
                          uint64_t inheriting, uint32_t fdflags, uint32_t out) {
    (void)inheriting;
    int32_t err = 0;
    rt_fd *d = dir_fd(ctx, dirfd, &err);
    if (!d)
        return err;
    GET(o, out, 4);
    char *p = guest_path(ctx, path, path_len, &err);
    if (!p)
        return err;
    rt_wasi *w = ctx->wasi;
    uint32_t slot = 3;
    while (slot < MAX_FDS && w->fds[slot].host >= 0)
        slot++;
    if (slot >= MAX_FDS) {
        free(p);
        return W_EMFILE;
    }
    const uint64_t READS = (1ULL << 1) | (1ULL << 14);  /* fd_read, fd_readdir */
    const uint64_t WRITES = (1ULL << 6) | (1ULL << 8) | (1ULL << 22);
    int read = (rights & READS) != 0, write = (rights & WRITES) != 0;
    int flags = O_CLOEXEC;
    if (oflags & 2)
        flags |= O_DIRECTORY;
    if (write && !(oflags & 2))
        flags |= read ? O_RDWR : O_WRONLY;
    else
        flags |= O_RDONLY;
    if (oflags & 1) flags |= O_CREAT;
    if (oflags & 4) flags |= O_EXCL;
    if (oflags & 8) flags |= O_TRUNC;
    if (fdflags & 1) flags |= O_APPEND;
    if (fdflags & 4) flags |= O_NONBLOCK;
    if (fdflags & (2 | 8 | 16)) flags |= O_SYNC;
    if (!(lookup & 1))
        flags |= O_NOFOLLOW;
    int h = open_beneath(d->host, p, flags, 0644);
    if (h < 0 && errno == EISDIR && (flags & (O_WRONLY | O_RDWR))) {
        /* a directory opened with write rights requested: open it read-only */
        h = open_beneath(d->host, p, (flags & ~(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)), 0);
    }
    free(p);
    if (h < 0)
        return errno == EXDEV ? W_ENOTCAPABLE : errno_to_wasi(errno);
    struct stat st;
    int is_dir = fstat(h, &st) == 0 && S_ISDIR(st.st_mode);
    rt_fd *f = &w->fds[slot];
    f->host = h;
    f->own = 1;
    f->is_dir = is_dir;
    f->preopen = NULL;
    if (slot + 1 > w->nfds)
        w->nfds = slot + 1;
    put_u32(o, slot);
    return 0;
}

int32_t rt_wasi_path_filestat_get(rt_ctx *ctx, int32_t dirfd, uint32_t lookup, uint32_t path,
                                  uint32_t path_len, uint32_t out) {
    int32_t err = 0;
    rt_fd *d = dir_fd(ctx, dirfd, &err);
    if (!d)
        return err;
    GET(o, out, 64);
    char *p = guest_path(ctx, path, path_len, &err);
    if (!p)
        return err;
    int h = open_beneath(d->host, p, O_PATH | O_CLOEXEC | ((lookup & 1) ? 0 : O_NOFOLLOW), 0);
    free(p);
    if (h < 0)
        return errno == EXDEV ? W_ENOTCAPABLE : errno_to_wasi(errno);
    struct stat st;
    int r = fstat(h, &st);
    int e = errno;
    close(h);
    if (r != 0)
        return errno_to_wasi(e);
    put_filestat(o, &st);
    return 0;
}

static int32_t path_op(rt_ctx *ctx, int32_t dirfd, uint32_t path, uint32_t len, int what) {
    int32_t err = 0;
    rt_fd *d = dir_fd(ctx, dirfd, &err);
    if (!d)
        return err;
    char *p = guest_path(ctx, path, len, &err);
    if (!p)
        return err;
    int r;
    if (what == 0)
        r = mkdirat(d->host, p, 0755);
    else if (what == 1)
        r = unlinkat(d->host, p, 0);
    else
        r = unlinkat(d->host, p, AT_REMOVEDIR);
    int e = errno;
    free(p);
    return r == 0 ? 0 : errno_to_wasi(e);
}

int32_t rt_wasi_path_create_directory(rt_ctx *ctx, int32_t fd, uint32_t path, uint32_t len) {
    return path_op(ctx, fd, path, len, 0);
}

int32_t rt_wasi_path_unlink_file(rt_ctx *ctx, int32_t fd, uint32_t path, uint32_t len) {
    return path_op(ctx, fd, path, len, 1);
}

int32_t rt_wasi_path_remove_directory(rt_ctx *ctx, int32_t fd, uint32_t path, uint32_t len) {
    return path_op(ctx, fd, path, len, 2);
}

int32_t rt_wasi_fd_readdir(rt_ctx *ctx, int32_t fd, uint32_t buf, uint32_t buf_len,
                           uint64_t cookie, uint32_t used_ptr) {
    rt_fd *f = get_fd(ctx, fd);
    if (!f)
        return W_EBADF;
    if (!f->is_dir)
        return W_ENOTDIR;
    GET(out, buf, buf_len);
    GET(used, used_ptr, 4);
    int h = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (h < 0)
        return errno_to_wasi(errno);
    DIR *dir = fdopendir(h);
    if (!dir) {
        close(h);
        return errno_to_wasi(errno);
    }
    uint32_t pos = 0;
    uint64_t index = 0;
    struct dirent *e;
    while (pos < buf_len && (e = readdir(dir)) != NULL) {
        if (index++ < cookie)
            continue;
        uint8_t head[24];
        size_t namlen = strlen(e->d_name);
        memset(head, 0, sizeof head);
        put_u64(head, index);
        put_u64(head + 8, (uint64_t)e->d_ino);
        put_u32(head + 16, (uint32_t)namlen);
        uint8_t t = FT_UNKNOWN;
        switch (e->d_type) {
        case DT_REG: t = FT_FILE; break;
        case DT_DIR: t = FT_DIR; break;
        case DT_CHR: t = FT_CHAR; break;
        case DT_BLK: t = FT_BLOCK; break;
        case DT_LNK: t = FT_SYMLINK; break;
        case DT_SOCK: t = FT_SOCK_STREAM; break;
        default: break;
        }
        head[20] = t;
        uint32_t n = buf_len - pos < 24 ? buf_len - pos : 24;
        memcpy(out + pos, head, n);
        pos += n;
        n = buf_len - pos < namlen ? buf_len - pos : (uint32_t)namlen;
        memcpy(out + pos, e->d_name, n);
        pos += n;
    }
    closedir(dir);
    put_u32(used, pos);
    return 0;
}

/* -- poll_oneoff (clock subscriptions sleep; fd subscriptions are ready) ---------------- */

int32_t rt_wasi_poll_oneoff(rt_ctx *ctx, uint32_t in, uint32_t out, uint32_t n,
                            uint32_t nevents) {
    if (n == 0)
        return W_EINVAL;
    GET(subs, in, (uint64_t)n * 48);
    GET(events, out, (uint64_t)n * 32);
    GET(count, nevents, 4);
    uint64_t sleep_ns = UINT64_MAX;
    int have_fd = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s = subs + 48 * i;
        if (s[8] == 0) {
            uint32_t id = get_u32(s + 16);
            uint64_t timeout = get_u64(s + 24);
            uint16_t flags;
            memcpy(&flags, s + 40, 2);
            if (flags & 1) {  /* absolute time */
                clockid_t c;
                struct timespec ts;
                if (clock_of(id, &c) && clock_gettime(c, &ts) == 0) {
                    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
                    timeout = timeout > now ? timeout - now : 0;
                }
            }
            if (timeout < sleep_ns)
                sleep_ns = timeout;
        } else {
            have_fd = 1;
        }
    }
    if (!have_fd && sleep_ns != UINT64_MAX) {
        struct timespec ts = {(time_t)(sleep_ns / 1000000000ULL), (long)(sleep_ns % 1000000000ULL)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s = subs + 48 * i;
        if (have_fd && s[8] == 0)
            continue;
        uint8_t *e = events + 32 * k++;
        memset(e, 0, 32);
        memcpy(e, s, 8);
        e[10] = s[8];
    }
    put_u32(count, k);
    return 0;
}

/* -- exit ----------------------------------------------------------------------------------- */

void rt_wasi_proc_exit(rt_ctx *ctx, int32_t code) {
    ctx->exit_code = code;
    ctx->trap_kind = RT_EXIT;
    longjmp(*(jmp_buf *)ctx->jb, RT_EXIT);
}

/* -- lookup ----------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void *fn;
} TABLE[] = {
    {"args_get", (void *)rt_wasi_args_get},
    {"args_sizes_get", (void *)rt_wasi_args_sizes_get},
    {"environ_get", (void *)rt_wasi_environ_get},
    {"environ_sizes_get", (void *)rt_wasi_environ_sizes_get},
    {"clock_res_get", (void *)rt_wasi_clock_res_get},
    {"clock_time_get", (void *)rt_wasi_clock_time_get},
    {"random_get", (void *)rt_wasi_random_get},
    {"sched_yield", (void *)rt_wasi_sched_yield},
    {"fd_write", (void *)rt_wasi_fd_write},
    {"fd_read", (void *)rt_wasi_fd_read},
    {"fd_pread", (void *)rt_wasi_fd_pread},
    {"fd_pwrite", (void *)rt_wasi_fd_pwrite},
    {"fd_seek", (void *)rt_wasi_fd_seek},
    {"fd_tell", (void *)rt_wasi_fd_tell},
    {"fd_close", (void *)rt_wasi_fd_close},
    {"fd_sync", (void *)rt_wasi_fd_sync},
    {"fd_datasync", (void *)rt_wasi_fd_datasync},
    {"fd_fdstat_get", (void *)rt_wasi_fd_fdstat_get},
    {"fd_fdstat_set_flags", (void *)rt_wasi_fd_fdstat_set_flags},
    {"fd_filestat_get", (void *)rt_wasi_fd_filestat_get},
    {"fd_filestat_set_size", (void *)rt_wasi_fd_filestat_set_size},
    {"fd_prestat_get", (void *)rt_wasi_fd_prestat_get},
    {"fd_prestat_dir_name", (void *)rt_wasi_fd_prestat_dir_name},
    {"fd_readdir", (void *)rt_wasi_fd_readdir},
    {"path_open", (void *)rt_wasi_path_open},
    {"path_filestat_get", (void *)rt_wasi_path_filestat_get},
    {"path_create_directory", (void *)rt_wasi_path_create_directory},
    {"path_unlink_file", (void *)rt_wasi_path_unlink_file},
    {"path_remove_directory", (void *)rt_wasi_path_remove_directory},
    {"poll_oneoff", (void *)rt_wasi_poll_oneoff},
    {"proc_exit", (void *)rt_wasi_proc_exit},
};

void *rt_wasi_lookup(const char *name) {
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++) {
        if (strcmp(TABLE[i].name, name) == 0)
            return TABLE[i].fn;
    }
    return NULL;
}
