/*
 * nbody.c -- planetary n-body simulation (5 bodies, symplectic Euler steps),
 * double-precision floating point.  Prints the system energy before and after
 * and a checksum of the final positions.
 *
 * Stresses: f64 arithmetic, sqrt, small nested loops over an array of structs.
 * Workload: STEPS time steps (override with -DSTEPS=...).
 */
#include <stdio.h>
#include <math.h>

#ifndef STEPS
#define STEPS 15000000
#endif

#define NBODIES 5
#define PI 3.141592653589793
#define SOLAR_MASS (4.0 * PI * PI)
#define DAYS_PER_YEAR 365.24

struct body {
    double x, y, z, vx, vy, vz, mass;
};

static struct body bodies[NBODIES] = {
    /* sun */
    { 0, 0, 0, 0, 0, 0, SOLAR_MASS },
    /* a Jupiter-like planet */
    { 4.84, -1.16, -0.10, 1.66e-03 * DAYS_PER_YEAR, 7.70e-03 * DAYS_PER_YEAR,
      -6.90e-05 * DAYS_PER_YEAR, 9.55e-04 * SOLAR_MASS },
    /* a Saturn-like planet */
    { 8.34, 4.12, -0.40, -2.77e-03 * DAYS_PER_YEAR, 5.00e-03 * DAYS_PER_YEAR,
      2.30e-05 * DAYS_PER_YEAR, 2.86e-04 * SOLAR_MASS },
    /* an Uranus-like planet */
    { 12.89, -15.11, -0.22, 2.96e-03 * DAYS_PER_YEAR, 2.37e-03 * DAYS_PER_YEAR,
      -2.96e-05 * DAYS_PER_YEAR, 4.36e-05 * SOLAR_MASS },
    /* a Neptune-like planet */
    { 15.37, -25.91, 0.17, 2.68e-03 * DAYS_PER_YEAR, 1.62e-03 * DAYS_PER_YEAR,
      -9.51e-05 * DAYS_PER_YEAR, 5.15e-05 * SOLAR_MASS },
};

static void offset_momentum(void) {
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < NBODIES; i++) {
        px += bodies[i].vx * bodies[i].mass;
        py += bodies[i].vy * bodies[i].mass;
        pz += bodies[i].vz * bodies[i].mass;
    }
    bodies[0].vx = -px / SOLAR_MASS;
    bodies[0].vy = -py / SOLAR_MASS;
    bodies[0].vz = -pz / SOLAR_MASS;
}

static double energy(void) {
    double e = 0.0;
    for (int i = 0; i < NBODIES; i++) {
        struct body *b = &bodies[i];
        e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
        for (int j = i + 1; j < NBODIES; j++) {
            struct body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            e -= b->mass * c->mass / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(double dt) {
    for (int i = 0; i < NBODIES; i++) {
        struct body *b = &bodies[i];
        for (int j = i + 1; j < NBODIES; j++) {
            struct body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * sqrt(d2));
            b->vx -= dx * c->mass * mag;
            b->vy -= dy * c->mass * mag;
            b->vz -= dz * c->mass * mag;
            c->vx += dx * b->mass * mag;
            c->vy += dy * b->mass * mag;
            c->vz += dz * b->mass * mag;
        }
    }
    for (int i = 0; i < NBODIES; i++) {
        bodies[i].x += dt * bodies[i].vx;
        bodies[i].y += dt * bodies[i].vy;
        bodies[i].z += dt * bodies[i].vz;
    }
}

int main(void) {
    offset_momentum();
    printf("energy before: %.9f\n", energy());
    for (int s = 0; s < STEPS; s++) advance(0.01);
    printf("energy after:  %.9f\n", energy());
    double sum = 0.0;
    for (int i = 0; i < NBODIES; i++) sum += bodies[i].x + 2 * bodies[i].y + 3 * bodies[i].z;
    printf("steps=%d position checksum=%.6f\n", STEPS, sum);
    return 0;
}
