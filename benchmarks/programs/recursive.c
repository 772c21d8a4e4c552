/*
 * recursive.c -- a call-heavy workload: allocate and walk binary trees
 * recursively (with a visitor called through a function pointer), the
 * Takeuchi function, naive Fibonacci and a recursive-descent evaluator for
 * generated arithmetic expressions.  Prints one checksum per part.
 *
 * Stresses: direct and indirect calls, function entry/exit, deep recursion,
 * small functions, malloc/free.
 * Workload: TREE_DEPTH, TREE_ROUNDS, TAK_X, FIB_N, EXPR_ROUNDS (override with -D...).
 */
#include <stdio.h>
#include <stdlib.h>

#ifndef TREE_DEPTH
#define TREE_DEPTH 18
#endif
#ifndef TREE_ROUNDS
#define TREE_ROUNDS 8
#endif
#ifndef TAK_X
#define TAK_X 28
#endif
#ifndef FIB_N
#define FIB_N 37
#endif
#ifndef EXPR_ROUNDS
#define EXPR_ROUNDS 4000
#endif

#define NOINLINE __attribute__((noinline))

static unsigned long long calls;

/* ---- binary trees ---- */

struct node {
    struct node *left, *right;
    int value;
};

NOINLINE static struct node *build(int depth, int value) {
    calls++;
    struct node *n = malloc(sizeof *n);
    n->value = value;
    if (depth > 0) {
        n->left = build(depth - 1, 2 * value - 1);
        n->right = build(depth - 1, 2 * value);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

typedef long long (*visitor)(const struct node *, long long);

NOINLINE static long long visit_sum(const struct node *n, long long acc) { return acc + n->value; }
NOINLINE static long long visit_hash(const struct node *n, long long acc) { return acc * 31 + (n->value & 0xff); }

NOINLINE static long long walk(const struct node *n, visitor f, long long acc) {
    calls++;
    if (!n) return acc;
    acc = walk(n->left, f, acc);
    acc = f(n, acc);
    return walk(n->right, f, acc);
}

NOINLINE static int depth_of(const struct node *n) {
    calls++;
    if (!n) return 0;
    int l = depth_of(n->left), r = depth_of(n->right);
    return 1 + (l > r ? l : r);
}

NOINLINE static void destroy(struct node *n) {
    calls++;
    if (!n) return;
    destroy(n->left);
    destroy(n->right);
    free(n);
}

/* ---- Takeuchi and Fibonacci ---- */

NOINLINE static int tak(int x, int y, int z) {
    calls++;
    if (y >= x) return z;
    return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y));
}

NOINLINE static int fib(int n) {
    calls++;
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* ---- recursive-descent expression evaluator ---- */

static char expr_buf[4096];
static int expr_len;
static unsigned gen_state = 1u;

static unsigned gen_next(void) {
    gen_state = gen_state * 1103515245u + 12345u;
    return gen_state >> 16;
}

NOINLINE static void gen_expr(int depth) {
    calls++;
    if (depth == 0 || gen_next() % 4 == 0 || expr_len > (int)sizeof expr_buf - 64) {
        expr_len += snprintf(expr_buf + expr_len, 8, "%u", gen_next() % 97 + 1);
        return;
    }
    static const char ops[] = "+-*+";
    expr_buf[expr_len++] = '(';
    gen_expr(depth - 1);
    expr_buf[expr_len++] = ops[gen_next() % 4];
    gen_expr(depth - 1);
    expr_buf[expr_len++] = ')';
}

static const char *cur;

NOINLINE static long long parse_sum(void);

NOINLINE static long long parse_atom(void) {
    calls++;
    if (*cur == '(') {
        cur++;
        long long v = parse_sum();
        cur++; /* ')' */
        return v;
    }
    long long v = 0;
    while (*cur >= '0' && *cur <= '9') v = v * 10 + (*cur++ - '0');
    return v;
}

NOINLINE static long long parse_product(void) {
    calls++;
    long long v = parse_atom();
    while (*cur == '*') {
        cur++;
        v = (v * parse_atom()) % 1000000007LL;
    }
    return v;
}

NOINLINE static long long parse_sum(void) {
    calls++;
    long long v = parse_product();
    while (*cur == '+' || *cur == '-') {
        char op = *cur++;
        long long r = parse_product();
        v = op == '+' ? v + r : v - r;
    }
    return v;
}

int main(void) {
    long long tree_sum = 0, tree_hash = 0;
    int depth = 0;
    for (int r = 0; r < TREE_ROUNDS; r++) {
        struct node *t = build(TREE_DEPTH, r + 1);
        tree_sum += walk(t, visit_sum, 0);
        tree_hash ^= walk(t, visit_hash, r);
        depth = depth_of(t);
        destroy(t);
    }
    printf("trees: depth=%d sum=%lld hash=%lld\n", depth, tree_sum, tree_hash);

    printf("tak(%d, 16, 8) = %d\n", TAK_X, tak(TAK_X, 16, 8));
    printf("fib(%d) = %d\n", FIB_N, fib(FIB_N));

    long long expr_total = 0;
    for (int r = 0; r < EXPR_ROUNDS; r++) {
        expr_len = 0;
        gen_expr(12);
        expr_buf[expr_len] = '\0';
        cur = expr_buf;
        expr_total = ((expr_total * 7 + parse_sum()) % 1000000007LL + 1000000007LL) % 1000000007LL;
    }
    printf("expressions: %d evaluated, checksum %lld\n", EXPR_ROUNDS, expr_total);
    printf("total calls = %llu\n", calls);
    return 0;
}
