/*
 * bytecode.c -- a stack-machine bytecode interpreter with a large switch,
 * running a pseudo-random workload: each iteration of the interpreted loop
 * advances an LCG and dispatches on 3 bits of it (an in-bytecode jump table)
 * to one of eight handlers, one of which calls an interpreted subroutine.
 * The bytecode is produced by a small assembler with label fix-ups.
 *
 * Stresses: the interpreter's dispatch switch (br_table), unpredictable
 * branches, short memory-resident stack operations.
 * Workload: ITERATIONS of the interpreted loop (override with -DITERATIONS=...).
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef ITERATIONS
#define ITERATIONS 10000000
#endif

enum op {
    HALT, NOP, PUSH, POP, DUP, SWAP, OVER,
    ADD, SUB, MUL, DIVU, REMU, AND, OR, XOR, SHL, SHRU, NOT, NEG, INC, DEC,
    LTU, GTU, EQ, NE,
    JMP, JZ, JNZ, SWITCH,
    LOAD, STORE, LOADM, STOREM,
    CALL, RET,
    NUM_OPS
};

/* ---- a tiny assembler ---------------------------------------------------- */

#define CODE_MAX 1024
#define MAX_LABELS 64
#define MAX_FIXUPS 128

static uint32_t code[CODE_MAX];
static int code_len;
static int label_pc[MAX_LABELS];
static struct { int at, label; } fixups[MAX_FIXUPS];
static int nfixups;

static void emit(uint32_t word) {
    if (code_len >= CODE_MAX) { puts("code overflow"); exit(2); }
    code[code_len++] = word;
}
static void emit_op1(enum op o, uint32_t imm) { emit(o); emit(imm); }
static void emit_ref(int label) {
    fixups[nfixups].at = code_len;
    fixups[nfixups].label = label;
    nfixups++;
    emit(0);
}
static void emit_jump(enum op o, int label) { emit(o); emit_ref(label); }
static void place(int label) { label_pc[label] = code_len; }
static void link(void) {
    for (int i = 0; i < nfixups; i++) code[fixups[i].at] = (uint32_t)label_pc[fixups[i].label];
}

/* variables */
enum { V_I, V_SEED, V_ACC, V_TMP, V_N };
/* labels */
enum { L_LOOP, L_END, L_NEXT, L_H0, L_H1, L_H2, L_H3, L_H4, L_H5, L_H6, L_H7,
       L_MIX, L_MIX_LOOP, L_MIX_DONE };

static void assemble(void) {
    emit_op1(PUSH, 0); emit_op1(STORE, V_I);
    emit_op1(PUSH, 2463534242u); emit_op1(STORE, V_SEED);
    emit_op1(PUSH, 1); emit_op1(STORE, V_ACC);

    place(L_LOOP);
    emit_op1(LOAD, V_I); emit_op1(LOAD, V_N); emit(LTU); emit_jump(JZ, L_END);
    /* seed = seed * 1103515245 + 12345 */
    emit_op1(LOAD, V_SEED); emit_op1(PUSH, 1103515245u); emit(MUL);
    emit_op1(PUSH, 12345); emit(ADD); emit(DUP); emit_op1(STORE, V_SEED);
    /* switch ((seed >> 16) & 7) */
    emit_op1(PUSH, 16); emit(SHRU); emit_op1(PUSH, 7); emit(AND);
    emit_op1(SWITCH, 8);
    emit_ref(L_H0); emit_ref(L_H1); emit_ref(L_H2); emit_ref(L_H3);
    emit_ref(L_H4); emit_ref(L_H5); emit_ref(L_H6); emit_ref(L_H7);

    place(L_H0); /* acc += seed */
    emit_op1(LOAD, V_ACC); emit_op1(LOAD, V_SEED); emit(ADD); emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H1); /* acc ^= seed << 3 */
    emit_op1(LOAD, V_ACC); emit_op1(LOAD, V_SEED); emit_op1(PUSH, 3); emit(SHL); emit(XOR);
    emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H2); /* acc = acc * 3 + 1 */
    emit_op1(LOAD, V_ACC); emit_op1(PUSH, 3); emit(MUL); emit(INC); emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H3); /* acc = mix(acc) */
    emit_op1(LOAD, V_ACC); emit_jump(CALL, L_MIX); emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H4); /* mem[i & 255] = acc */
    emit_op1(LOAD, V_ACC); emit_op1(LOAD, V_I); emit_op1(PUSH, 255); emit(AND); emit(STOREM);
    emit_jump(JMP, L_NEXT);
    place(L_H5); /* acc += mem[(seed >> 8) & 255] */
    emit_op1(LOAD, V_ACC); emit_op1(LOAD, V_SEED); emit_op1(PUSH, 8); emit(SHRU);
    emit_op1(PUSH, 255); emit(AND); emit(LOADM); emit(ADD); emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H6); /* acc -= i; if acc % 5 == 0 then acc = ~acc */
    emit_op1(LOAD, V_ACC); emit_op1(LOAD, V_I); emit(SUB); emit_op1(STORE, V_ACC);
    emit_op1(LOAD, V_ACC); emit_op1(PUSH, 5); emit(REMU); emit_jump(JNZ, L_NEXT);
    emit_op1(LOAD, V_ACC); emit(NOT); emit_op1(STORE, V_ACC);
    emit_jump(JMP, L_NEXT);
    place(L_H7); /* acc = acc / ((i & 15) + 1) + (acc >> 20) */
    emit_op1(LOAD, V_ACC); emit(DUP); emit_op1(LOAD, V_I); emit_op1(PUSH, 15); emit(AND); emit(INC);
    emit(DIVU); emit(SWAP); emit_op1(PUSH, 20); emit(SHRU); emit(ADD); emit_op1(STORE, V_ACC);
    emit(NOP);

    place(L_NEXT);
    emit_op1(LOAD, V_I); emit(INC); emit_op1(STORE, V_I);
    emit_jump(JMP, L_LOOP);

    place(L_END);
    emit_op1(LOAD, V_ACC); emit(HALT);

    /* mix(x): 4 rounds of x = (x ^ (x >> 7)) * 0x9e3779b1 + round */
    place(L_MIX);
    emit_op1(PUSH, 0); emit_op1(STORE, V_TMP);
    place(L_MIX_LOOP);
    emit_op1(LOAD, V_TMP); emit_op1(PUSH, 4); emit(EQ); emit_jump(JNZ, L_MIX_DONE);
    emit(DUP); emit_op1(PUSH, 7); emit(SHRU); emit(XOR);
    emit_op1(PUSH, 0x9e3779b1u); emit(MUL); emit_op1(LOAD, V_TMP); emit(ADD);
    emit_op1(LOAD, V_TMP); emit(INC); emit_op1(STORE, V_TMP);
    emit_jump(JMP, L_MIX_LOOP);
    place(L_MIX_DONE);
    emit(RET);

    link();
}

/* ---- the interpreter ----------------------------------------------------- */

#define STACK_MAX 256
#define RSTACK_MAX 64

static uint64_t executed;
static uint32_t op_counts[NUM_OPS];

static uint32_t run(uint32_t n) {
    uint32_t stack[STACK_MAX], rstack[RSTACK_MAX], vars[8] = {0}, mem[256] = {0};
    int sp = 0, rsp = 0;
    uint32_t pc = 0;
    uint64_t count = 0;
    vars[V_N] = n;
    for (;;) {
        uint32_t op = code[pc++];
        count++;
        op_counts[op]++;
        switch (op) {
        case HALT: executed += count; return stack[sp - 1];
        case NOP: break;
        case PUSH: stack[sp++] = code[pc++]; break;
        case POP: sp--; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case SWAP: { uint32_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
        case OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case DIVU: sp--; stack[sp - 1] = stack[sp] ? stack[sp - 1] / stack[sp] : 0; break;
        case REMU: sp--; stack[sp - 1] = stack[sp] ? stack[sp - 1] % stack[sp] : 0; break;
        case AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case OR: sp--; stack[sp - 1] |= stack[sp]; break;
        case XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
        case SHL: sp--; stack[sp - 1] <<= (stack[sp] & 31); break;
        case SHRU: sp--; stack[sp - 1] >>= (stack[sp] & 31); break;
        case NOT: stack[sp - 1] = ~stack[sp - 1]; break;
        case NEG: stack[sp - 1] = 0u - stack[sp - 1]; break;
        case INC: stack[sp - 1]++; break;
        case DEC: stack[sp - 1]--; break;
        case LTU: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case GTU: sp--; stack[sp - 1] = stack[sp - 1] > stack[sp]; break;
        case EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case NE: sp--; stack[sp - 1] = stack[sp - 1] != stack[sp]; break;
        case JMP: pc = code[pc]; break;
        case JZ: { uint32_t t = code[pc++]; if (stack[--sp] == 0) pc = t; break; }
        case JNZ: { uint32_t t = code[pc++]; if (stack[--sp] != 0) pc = t; break; }
        case SWITCH: {
            uint32_t ncases = code[pc++], v = stack[--sp];
            pc = code[pc + (v < ncases ? v : ncases - 1)];
            break;
        }
        case LOAD: stack[sp++] = vars[code[pc++] & 7]; break;
        case STORE: vars[code[pc++] & 7] = stack[--sp]; break;
        case LOADM: stack[sp - 1] = mem[stack[sp - 1] & 255]; break;
        case STOREM: sp -= 2; mem[stack[sp + 1] & 255] = stack[sp]; break;
        case CALL: rstack[rsp++] = pc + 1; pc = code[pc]; break;
        case RET: pc = rstack[--rsp]; break;
        default:
            printf("bad opcode %u at pc %u\n", op, pc - 1);
            exit(3);
        }
        if (sp < 0 || sp >= STACK_MAX - 2 || rsp < 0 || rsp >= RSTACK_MAX) {
            printf("stack fault at pc %u\n", pc);
            exit(4);
        }
    }
}

int main(void) {
    assemble();
    uint32_t result = run(ITERATIONS);
    printf("bytecode: %d words, %d iterations\n", code_len, ITERATIONS);
    printf("result = %08x\n", (unsigned)result);
    printf("executed ops = %llu\n", (unsigned long long)executed);
    uint32_t h = 0;
    for (int i = 0; i < NUM_OPS; i++) h = h * 131u + op_counts[i];
    printf("op histogram checksum = %08x (calls %u, switches %u)\n", (unsigned)h,
           (unsigned)op_counts[CALL], (unsigned)op_counts[SWITCH]);
    return 0;
}
