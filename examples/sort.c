/*
 * sort.c -- quicksort (with an insertion-sort cutoff) and a plain insertion
 * sort over a pseudo-random array produced by a fixed linear congruential
 * generator.  Prints checksums of both sorted arrays.
 *
 * Usage: sort.wasm [N]      (default N = 2000, clamped to 1..100000)
 * Exercises: nested loops, recursion, memory loads/stores, comparisons.
 */
#include <stdio.h>
#include <stdlib.h>

static unsigned lcg_state = 12345u;

static unsigned next_rand(void) {
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (lcg_state >> 8) & 0xffffffu;
}

static void insertion_sort(int *a, int lo, int hi) {
    for (int i = lo + 1; i <= hi; i++) {
        int v = a[i];
        int j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void swap(int *a, int i, int j) {
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void quick_sort(int *a, int lo, int hi) {
    while (hi - lo > 16) {
        /* median of three pivot */
        int mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swap(a, mid, lo);
        if (a[hi] < a[lo]) swap(a, hi, lo);
        if (a[hi] < a[mid]) swap(a, hi, mid);
        int pivot = a[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                swap(a, i, j);
                i++;
                j--;
            }
        }
        /* recurse into the smaller half, loop on the larger one */
        if (j - lo < hi - i) {
            quick_sort(a, lo, j);
            lo = i;
        } else {
            quick_sort(a, i, hi);
            hi = j;
        }
    }
    insertion_sort(a, lo, hi);
}

static int is_sorted(const int *a, int n) {
    for (int i = 1; i < n; i++)
        if (a[i - 1] > a[i]) return 0;
    return 1;
}

static unsigned checksum(const int *a, int n) {
    unsigned h = 0;
    for (int i = 0; i < n; i++) h = h * 31u + (unsigned)a[i];
    return h;
}

int main(int argc, char **argv) {
    int n = 2000;
    if (argc > 1) n = atoi(argv[1]);
    if (n < 1) n = 1;
    if (n > 100000) n = 100000;

    int *a = malloc(sizeof(int) * (size_t)n);
    int *b = malloc(sizeof(int) * (size_t)n);
    if (!a || !b) return 1;
    for (int i = 0; i < n; i++) a[i] = b[i] = (int)next_rand();

    quick_sort(a, 0, n - 1);
    insertion_sort(b, 0, n - 1);

    printf("n=%d\n", n);
    printf("quicksort: sorted=%d checksum=%08x\n", is_sorted(a, n), checksum(a, n));
    printf("insertion: sorted=%d checksum=%08x\n", is_sorted(b, n), checksum(b, n));
    printf("min=%d max=%d\n", a[0], a[n - 1]);
    free(a);
    free(b);
    return 0;
}
