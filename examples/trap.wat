;; trap.wat -- functions that trap, for trap-reporting tests.
;;   div(a, b)        : i32.div_s; traps "integer divide by zero" when b == 0
;;                      (and "integer overflow" for div(INT_MIN, -1))
;;   oob(addr)        : i32.load at addr; one 64 KiB page of memory, so
;;                      oob(65536) traps "out of bounds memory access"
;;   boom()           : always executes `unreachable`
;;   deep(n)          : recurses n levels and then hits unreachable (trap with
;;                      a multi-frame backtrace)
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0) "\2a\00\00\00")

  (func $div (export "div") (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b)))

  (func $oob (export "oob") (param $addr i32) (result i32)
    (i32.load (local.get $addr)))

  (func $boom (export "boom")
    unreachable)

  (func $deep (export "deep") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n))
      (then unreachable))
    (i32.add (i32.const 1)
      (call $deep (i32.sub (local.get $n) (i32.const 1)))))
)
