/*
 * hash.c -- FNV-1a (32-bit) and a murmur3-style 32-bit hash over a generated
 * buffer and over each command-line argument.
 *
 * Usage: hash.wasm [STRING...]   (with no arguments, hashes three built-in words)
 * Exercises: byte loads, shifts/rotates/multiplies, tight loops, a switch for
 * the tail bytes.
 */
#include <stdio.h>
#include <string.h>
#include <stdint.h>

static uint32_t fnv1a(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t rotl32(uint32_t x, int r) {
    return (x << r) | (x >> (32 - r));
}

static uint32_t murmurish(const unsigned char *p, size_t n, uint32_t seed) {
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = seed;
    size_t blocks = n / 4;
    for (size_t i = 0; i < blocks; i++) {
        uint32_t k = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) |
                     ((uint32_t)p[4 * i + 2] << 16) | ((uint32_t)p[4 * i + 3] << 24);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5u + 0xe6546b64u;
    }
    const unsigned char *tail = p + blocks * 4;
    uint32_t k = 0;
    switch (n & 3) {
    case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)n;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static void report(const char *s) {
    size_t n = strlen(s);
    printf("%-12s fnv1a=%08x murmur=%08x\n", s,
           (unsigned)fnv1a((const unsigned char *)s, n),
           (unsigned)murmurish((const unsigned char *)s, n, 42u));
}

int main(int argc, char **argv) {
    static unsigned char buf[4099];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)((i * 131u + 7u) ^ (i >> 3));
    printf("buffer[%u] fnv1a=%08x murmur=%08x\n", (unsigned)sizeof buf,
           (unsigned)fnv1a(buf, sizeof buf), (unsigned)murmurish(buf, sizeof buf, 0u));

    if (argc > 1) {
        for (int i = 1; i < argc; i++) report(argv[i]);
    } else {
        report("wasm");
        report("probes");
        report("instrument");
    }
    return 0;
}
