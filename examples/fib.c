/*
 * fib.c -- classic recursive functions: naive Fibonacci, Ackermann and a
 * mutually recursive is_even/is_odd pair.
 *
 * Usage: fib.wasm [N]   (default N = 20, clamped to 0..30)
 * Exercises: direct calls, deep recursion, function entry/exit, returns.
 */
#include <stdio.h>
#include <stdlib.h>

static int calls;

__attribute__((noinline)) static int fib(int n) {
    calls++;
    if (n < 2) return n;
    return fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) static int ackermann(int m, int n) {
    calls++;
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

__attribute__((noinline)) static int is_odd(unsigned n);

__attribute__((noinline)) static int is_even(unsigned n) {
    calls++;
    return n == 0 ? 1 : is_odd(n - 1);
}

__attribute__((noinline)) static int is_odd(unsigned n) {
    calls++;
    return n == 0 ? 0 : is_even(n - 1);
}

int main(int argc, char **argv) {
    int n = 20;
    if (argc > 1) n = atoi(argv[1]);
    if (n < 0) n = 0;
    if (n > 30) n = 30;

    calls = 0;
    printf("fib(%d) = %d (%d calls)\n", n, fib(n), calls);
    calls = 0;
    printf("ackermann(2, 3) = %d (%d calls)\n", ackermann(2, 3), calls);
    calls = 0;
    int r = ackermann(3, 3);
    printf("ackermann(3, 3) = %d (%d calls)\n", r, calls);
    calls = 0;
    printf("is_even(101) = %d (%d calls)\n", is_even(101), calls);
    return 0;
}
