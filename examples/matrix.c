/*
 * matrix.c -- double-precision math: a matrix product, a Newton square root,
 * a Horner polynomial and a small numerical integration.  Results are printed
 * with fixed precision so the output is stable.
 *
 * Usage: matrix.wasm [N]   (default N = 24, matrix size clamped to 1..64)
 * Exercises: f64 arithmetic, f64<->i32 conversions, comparisons, nested loops.
 */
#include <stdio.h>
#include <stdlib.h>

#define MAXN 64

static double A[MAXN][MAXN], B[MAXN][MAXN], C[MAXN][MAXN];

static double newton_sqrt(double x) {
    if (x <= 0.0) return 0.0;
    double g = x > 1.0 ? x / 2.0 : 1.0;
    for (int i = 0; i < 40; i++) {
        double next = 0.5 * (g + x / g);
        if (next == g) break;
        g = next;
    }
    return g;
}

static double horner(const double *coef, int n, double x) {
    double r = 0.0;
    for (int i = n - 1; i >= 0; i--) r = r * x + coef[i];
    return r;
}

static double simpson(double a, double b, int steps) {
    static const double coef[] = { 1.0, -0.5, 0.25, 0.125 };
    double h = (b - a) / steps, s = horner(coef, 4, a) + horner(coef, 4, b);
    for (int i = 1; i < steps; i++) s += (i & 1 ? 4.0 : 2.0) * horner(coef, 4, a + i * h);
    return s * h / 3.0;
}

int main(int argc, char **argv) {
    int n = 24;
    if (argc > 1) n = atoi(argv[1]);
    if (n < 1) n = 1;
    if (n > MAXN) n = MAXN;

    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            A[i][j] = (double)((i * 7 + j * 3) % 11) / 4.0 - 1.0;
            B[i][j] = (double)((i + 2 * j) % 5) * 0.5 + 0.25;
        }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++) s += A[i][k] * B[k][j];
            C[i][j] = s;
        }
    double trace = 0.0, total = 0.0;
    long long rounded = 0;
    for (int i = 0; i < n; i++) {
        trace += C[i][i];
        for (int j = 0; j < n; j++) {
            total += C[i][j];
            rounded += (long long)(C[i][j] * 16.0);
        }
    }
    printf("matmul n=%d trace=%.4f sum=%.4f rounded=%lld\n", n, trace, total, rounded);
    printf("sqrt(2)=%.12f sqrt(1e6)=%.6f\n", newton_sqrt(2.0), newton_sqrt(1e6));
    printf("integral=%.10f\n", simpson(0.0, 2.0, 100));
    return 0;
}
