/* files.c -- WASI file-system, environment and clock calls, for the native backend's
 * WASI tests: prints what it finds so wasmtime and the C runtime can be compared.
 * Usage: files.wasm [ARGS...] with a directory preopened as /data. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    printf("GREETING = %s\n", greeting ? greeting : "(unset)");

    FILE *f = fopen("/data/out.txt", "w");
    if (!f) { printf("fopen w: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 100; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);

    f = fopen("/data/out.txt", "r");
    char line[64];
    int n = 0;
    long sum = 0;
    while (fgets(line, sizeof line, f)) { n++; sum += atoi(line + 5); }
    fseek(f, 0, SEEK_END);
    printf("read %d lines, sum %ld, size %ld\n", n, sum, ftell(f));
    fclose(f);

    struct stat st;
    if (stat("/data/in.txt", &st) == 0)
        printf("in.txt: %lld bytes, regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    f = fopen("/data/in.txt", "r");
    if (f) {
        char buf[128] = {0};
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        printf("in.txt says (%zu): %s", got, buf);
        fclose(f);
    }
    printf("missing: %s\n", fopen("/data/missing.txt", "r") ? "found" : strerror(errno));
    printf("escape: %s\n", fopen("/data/../../etc/passwd", "r") ? "ESCAPED" : "refused");
    mkdir("/data/sub", 0755);
    DIR *d = opendir("/data");
    char *names[64];
    int k = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && k < 64)
        if (e->d_name[0] != '.') names[k++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(names, k, sizeof names[0], cmp);
    for (int i = 0; i < k; i++)
        printf("entry %s\n", names[i]);
    unlink("/data/out.txt");
    rmdir("/data/sub");
    printf("after cleanup: %s\n", access("/data/out.txt", F_OK) == 0 ? "still there" : "gone");

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    time_t now = time(NULL);
    printf("clock ok: %d\n", ts.tv_sec >= 0 && now > 1600000000);
    unsigned char r[16];
    arc4random_buf(r, sizeof r);
    int nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero |= r[i];
    printf("random ok: %d\n", nonzero != 0);
    return argc > 2 ? atoi(argv[2]) : 0;
}
