/*
 * sieve.c -- Sieve of Eratosthenes over a byte array, repeated ROUNDS times,
 * followed by trial-division primality checks of a range of odd numbers.
 * Prints the prime count and a checksum.
 *
 * Stresses: tight integer loops, byte stores with strides, division/remainder,
 * data-dependent branches.
 * Workload: LIMIT (sieve size), ROUNDS, TRIAL_COUNT (override with -D...).
 */
#include <stdio.h>
#include <string.h>

#ifndef LIMIT
#define LIMIT 2000000
#endif
#ifndef ROUNDS
#define ROUNDS 40
#endif
#ifndef TRIAL_COUNT
#define TRIAL_COUNT 240000
#endif

static unsigned char composite[LIMIT + 1];

static unsigned sieve(unsigned *checksum) {
    memset(composite, 0, sizeof composite);
    composite[0] = composite[1] = 1;
    for (unsigned i = 2; i * i <= LIMIT; i++) {
        if (!composite[i])
            for (unsigned j = i * i; j <= LIMIT; j += i) composite[j] = 1;
    }
    unsigned count = 0, h = 0;
    for (unsigned i = 0; i <= LIMIT; i++) {
        if (!composite[i]) {
            count++;
            h = h * 33u ^ i;
        }
    }
    *checksum = h;
    return count;
}

static int is_prime_trial(unsigned n) {
    if (n < 2) return 0;
    if (n % 2 == 0) return n == 2;
    for (unsigned d = 3; d * d <= n; d += 2)
        if (n % d == 0) return 0;
    return 1;
}

int main(void) {
    unsigned count = 0, checksum = 0, total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        count = sieve(&checksum);
        total += count;
    }
    printf("primes <= %d: %u (checksum %08x, %d rounds, total %u)\n", LIMIT, count, checksum,
           ROUNDS, total);

    unsigned found = 0, last = 0;
    for (unsigned i = 0; i < TRIAL_COUNT; i++) {
        unsigned n = 1000000001u + 2u * i;
        if (is_prime_trial(n)) {
            found++;
            last = n;
        }
    }
    printf("trial division: %u primes among %d odd numbers above 1e9, last %u\n", found,
           TRIAL_COUNT, last);
    return 0;
}
