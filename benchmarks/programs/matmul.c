/*
 * matmul.c -- integer and double matrix multiplication (naive i-j-k and a
 * cache-blocked i-k-j variant), followed by a transpose.  Prints checksums.
 *
 * Stresses: triple nested loops, 2-D array indexing (address arithmetic),
 * i32 and f64 multiply-add, loads/stores over a few MB of memory.
 * Workload: N x N matrices, REPS repetitions (override with -D...).
 */
#include <stdio.h>

#ifndef N
#define N 384
#endif
#ifndef REPS
#define REPS 8
#endif
#define BLOCK 32

static int ia[N][N], ib[N][N], ic[N][N];
static double da[N][N], db[N][N], dc[N][N], dt[N][N];

static void init(int rep) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            ia[i][j] = (i * 31 + j * 17 + rep) % 23 - 11;
            ib[i][j] = (i * 7 + j * 13 + 3 * rep) % 19 - 9;
            da[i][j] = (double)((i + j + rep) % 10) * 0.125 - 0.5;
            db[i][j] = (double)((i * j + rep) % 7) * 0.25 + 0.1;
        }
}

static void imul_naive(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            int s = 0;
            for (int k = 0; k < N; k++) s += ia[i][k] * ib[k][j];
            ic[i][j] = s;
        }
}

static void dmul_blocked(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) dc[i][j] = 0.0;
    for (int ii = 0; ii < N; ii += BLOCK)
        for (int kk = 0; kk < N; kk += BLOCK)
            for (int jj = 0; jj < N; jj += BLOCK)
                for (int i = ii; i < ii + BLOCK && i < N; i++)
                    for (int k = kk; k < kk + BLOCK && k < N; k++) {
                        double a = da[i][k];
                        for (int j = jj; j < jj + BLOCK && j < N; j++) dc[i][j] += a * db[k][j];
                    }
}

static void dmul_naive_transposed(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) dt[j][i] = db[i][j];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < N; k++) s += da[i][k] * dt[j][k];
            /* compare with the blocked result */
            double d = s - dc[i][j];
            if (d > 1e-9 || d < -1e-9) dc[i][j] = -1e9;
        }
}

int main(void) {
    unsigned isum = 0;
    double dsum = 0.0;
    int mismatches = 0;
    for (int r = 0; r < REPS; r++) {
        init(r);
        imul_naive();
        dmul_blocked();
        dmul_naive_transposed();
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                isum = isum * 7u + (unsigned)ic[i][j];
                if (dc[i][j] == -1e9) mismatches++;
                dsum += dc[i][j];
            }
    }
    printf("N=%d reps=%d\n", N, REPS);
    printf("int checksum = %08x\n", isum);
    printf("double sum = %.6f mismatches = %d\n", dsum, mismatches);
    return 0;
}
