/*
 * fnptr.c -- dispatch through function pointers: an operation table indexed
 * by a generated opcode stream, a qsort() call with a comparator callback and
 * a small "vtable" of shape objects.
 *
 * Usage: fnptr.wasm [N]   (default N = 1000 dispatched operations, 1..1000000)
 * Exercises: call_indirect (table dispatch, libc callbacks), struct fields.
 */
#include <stdio.h>
#include <stdlib.h>

typedef unsigned (*binop_fn)(unsigned, unsigned);

static unsigned op_add(unsigned a, unsigned b) { return a + b; }
static unsigned op_sub(unsigned a, unsigned b) { return a - b; }
static unsigned op_mul(unsigned a, unsigned b) { return a * b + 1u; }
static unsigned op_xor(unsigned a, unsigned b) { return a ^ (b << 3); }
static unsigned op_rot(unsigned a, unsigned b) { unsigned r = b & 31u; return (a << r) | (a >> ((32u - r) & 31u)); }

static binop_fn const table[] = { op_add, op_sub, op_mul, op_xor, op_rot };
static const char *const names[] = { "add", "sub", "mul", "xor", "rot" };
#define NOPS (sizeof table / sizeof table[0])

struct shape;
struct shape_vt {
    const char *name;
    int (*area)(const struct shape *);
    int (*perimeter)(const struct shape *);
};
struct shape {
    const struct shape_vt *vt;
    int a, b;
};

static int rect_area(const struct shape *s) { return s->a * s->b; }
static int rect_perim(const struct shape *s) { return 2 * (s->a + s->b); }
static int square_area(const struct shape *s) { return s->a * s->a; }
static int square_perim(const struct shape *s) { return 4 * s->a; }
static int tri_area(const struct shape *s) { return s->a * s->b / 2; }
static int tri_perim(const struct shape *s) { return s->a + s->b + (s->a > s->b ? s->a : s->b); }

static const struct shape_vt rect_vt = { "rect", rect_area, rect_perim };
static const struct shape_vt square_vt = { "square", square_area, square_perim };
static const struct shape_vt tri_vt = { "triangle", tri_area, tri_perim };

static int cmp_desc(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return (a < b) - (a > b);
}

int main(int argc, char **argv) {
    int n = 1000;
    if (argc > 1) n = atoi(argv[1]);
    if (n < 1) n = 1;
    if (n > 1000000) n = 1000000;

    unsigned acc = 1u, seed = 7u;
    unsigned counts[NOPS] = {0};
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        unsigned k = (seed >> 16) % NOPS;
        counts[k]++;
        acc = table[k](acc, seed >> 7);
    }
    printf("dispatch: n=%d acc=%08x\n", n, acc);
    for (unsigned k = 0; k < NOPS; k++) printf("  %s: %u\n", names[k], counts[k]);

    struct shape shapes[] = {
        { &rect_vt, 3, 4 }, { &square_vt, 5, 0 }, { &tri_vt, 6, 8 }, { &rect_vt, 10, 2 },
    };
    int areas[4];
    for (int i = 0; i < 4; i++) {
        areas[i] = shapes[i].vt->area(&shapes[i]);
        printf("  %-8s area=%d perimeter=%d\n", shapes[i].vt->name, areas[i],
               shapes[i].vt->perimeter(&shapes[i]));
    }
    qsort(areas, 4, sizeof areas[0], cmp_desc);
    printf("areas sorted desc: %d %d %d %d\n", areas[0], areas[1], areas[2], areas[3]);
    return 0;
}
