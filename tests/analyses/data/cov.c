/*
 * cov.c -- a small program with known line counts, for the coverage tests
 * (tests/analyses). Built with -g -O0 so every line keeps its own code:
 *
 *     python -m ziglang cc --target=wasm32-wasi -g -O0 -fno-sanitize=undefined \
 *         cov.c -o cov-g.wasm
 *
 * (zig enables UBSan at -O0; its checks would add branches to every line.)
 *
 * Usage: cov-g.wasm [N]   (default N = 10: the loop body runs N times)
 * Prints "sum=S counts=A,B,C". No stdio, to keep the binary (and its libc
 * debug info) small. The tests rely on the line numbers: keep them stable.
 */
#include <stdlib.h>
#include <unistd.h>

static int square(int x) {
    return x * x;
}

static int never_called(int x) {
    return x + 42;
}

static int classify(int v) {
    if (v % 3 == 0)
        return 0;
    if (v % 3 == 1)
        return 1;
    return 2;
}

static char *put_int(char *p, int v) {
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (k > 0)
        *p++ = tmp[--k];
    return p;
}

static char *put_str(char *p, const char *s) {
    while (*s)
        *p++ = *s++;
    return p;
}

int main(int argc, char **argv) {
    int n = 10;
    if (argc > 1)
        n = atoi(argv[1]);
    int sum = 0;
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        sum += square(i);
        counts[classify(i)]++;
    }
    if (sum < 0)
        sum = never_called(sum);
    char buf[64];
    char *p = put_str(buf, "sum=");
    p = put_int(p, sum);
    p = put_str(p, " counts=");
    for (int k = 0; k < 3; k++) {
        if (k > 0)
            *p++ = ',';
        p = put_int(p, counts[k]);
    }
    *p++ = '\n';
    write(1, buf, (size_t)(p - buf));
    return 0;
}
