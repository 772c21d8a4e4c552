;; loop.wat -- a counting loop closed by br_if.
;; run(n) returns sum_{i=0}^{n-1} (i * 3 + 1) (wrapping i32 arithmetic);
;; run(0) = 0, run(10) = 145.  steps is a mutable global counting iterations.
(module
  (global $steps (export "steps") (mut i32) (i32.const 0))

  (func $run (export "run") (param $n i32) (result i32)
    (local $i i32)
    (local $acc i32)
    (if (i32.le_s (local.get $n) (i32.const 0))
      (then (return (i32.const 0))))
    (loop $top
      ;; acc += i * 3 + 1
      (local.set $acc
        (i32.add (local.get $acc)
          (i32.add (i32.mul (local.get $i) (i32.const 3)) (i32.const 1))))
      (global.set $steps (i32.add (global.get $steps) (i32.const 1)))
      ;; i++ ; continue while i < n
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $top (i32.lt_s (local.get $i) (local.get $n))))
    (local.get $acc))

  ;; nested(n): two nested loops, returns n*n (count of inner iterations)
  (func $nested (export "nested") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $c i32)
    (block $done
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (loop $outer
        (local.set $j (i32.const 0))
        (loop $inner
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $inner (i32.lt_s (local.get $j) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $outer (i32.lt_s (local.get $i) (local.get $n)))))
    (local.get $c))
)
