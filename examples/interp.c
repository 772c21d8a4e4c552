/*
 * interp.c -- a tiny stack-based bytecode interpreter with a switch-dispatched
 * main loop.  It runs two built-in programs: an iterative factorial/sum loop
 * and a GCD computation, then prints the results and an executed-op count.
 *
 * Usage: interp.wasm [CODE]
 *   With no argument the exit code is 0.
 *   With an argument, a third bytecode program runs that executes the EXIT
 *   opcode with the value atoi(CODE) & 255, so the process deliberately exits
 *   with that (possibly nonzero) status, e.g. `interp.wasm 3` exits with 3.
 *
 * Exercises: a large switch (br_table), tight loop, conditional branches,
 * stack memory traffic.
 */
#include <stdio.h>
#include <stdlib.h>

enum {
    OP_HALT, OP_PUSH, OP_POP, OP_DUP, OP_SWAP, OP_OVER,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_NEG,
    OP_LOAD, OP_STORE, OP_JMP, OP_JZ, OP_JNZ, OP_LT, OP_EQ,
    OP_PRINT, OP_EXIT
};

#define STACK_MAX 64
#define NVARS 8

static long long executed;

/* Returns the value on top of the stack at HALT, or exits on OP_EXIT. */
static int run(const int *code, const char *name) {
    int stack[STACK_MAX];
    int vars[NVARS] = {0};
    int sp = 0, pc = 0;
    for (;;) {
        int op = code[pc++];
        executed++;
        switch (op) {
        case OP_HALT:
            return sp > 0 ? stack[sp - 1] : 0;
        case OP_PUSH: stack[sp++] = code[pc++]; break;
        case OP_POP: sp--; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_SWAP: { int t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
        case OP_OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case OP_MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case OP_NEG: stack[sp - 1] = -stack[sp - 1]; break;
        case OP_LOAD: stack[sp++] = vars[code[pc++]]; break;
        case OP_STORE: vars[code[pc++]] = stack[--sp]; break;
        case OP_JMP: pc = code[pc]; break;
        case OP_JZ: { int t = code[pc++]; if (stack[--sp] == 0) pc = t; break; }
        case OP_JNZ: { int t = code[pc++]; if (stack[--sp] != 0) pc = t; break; }
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case OP_PRINT: printf("  [%s] %d\n", name, stack[--sp]); break;
        case OP_EXIT: exit(stack[sp - 1] & 255);
        default:
            printf("bad opcode %d at %d\n", op, pc - 1);
            return -1;
        }
        if (sp < 0 || sp >= STACK_MAX) {
            printf("stack error at %d\n", pc);
            return -1;
        }
    }
}

/* v0 = i, v1 = fact, v2 = sum ; for i in 1..10: fact = fact*i mod 1000003; sum += i*i */
static const int prog_loop[] = {
    OP_PUSH, 1, OP_STORE, 0,            /* 0: i = 1          */
    OP_PUSH, 1, OP_STORE, 1,            /* 4: fact = 1       */
    OP_PUSH, 0, OP_STORE, 2,            /* 8: sum = 0        */
    /* 12: loop head */
    OP_LOAD, 0, OP_PUSH, 11, OP_LT, OP_JZ, 47,
    OP_LOAD, 1, OP_LOAD, 0, OP_MUL, OP_PUSH, 1000003, OP_MOD, OP_STORE, 1,
    OP_LOAD, 0, OP_DUP, OP_MUL, OP_LOAD, 2, OP_ADD, OP_STORE, 2,
    OP_LOAD, 0, OP_PUSH, 1, OP_ADD, OP_STORE, 0,
    OP_JMP, 12,
    /* 47: done */
    OP_LOAD, 1, OP_PRINT,
    OP_LOAD, 2, OP_PRINT,
    OP_LOAD, 1, OP_LOAD, 2, OP_ADD, OP_HALT,
};

/* gcd(1071, 462) by repeated modulo */
static const int prog_gcd[] = {
    OP_PUSH, 1071, OP_PUSH, 462,        /* 0: a b            */
    /* 4: loop: if b == 0 -> done */
    OP_DUP, OP_JZ, 13,
    OP_SWAP, OP_OVER, OP_MOD,           /* b, a%b            */
    OP_JMP, 4,
    OP_HALT,                            /* 12 (unused)       */
    /* 13: done: drop the zero, result left on top */
    OP_POP, OP_DUP, OP_PRINT, OP_HALT,
};

int main(int argc, char **argv) {
    int r1 = run(prog_loop, "loop");
    int r2 = run(prog_gcd, "gcd");
    printf("loop result = %d\n", r1);
    printf("gcd result = %d\n", r2);
    printf("executed ops = %lld\n", executed);
    if (argc > 1) {
        int prog_exit[] = { OP_PUSH, atoi(argv[1]), OP_EXIT };
        run(prog_exit, "exit");
    }
    return 0;
}
