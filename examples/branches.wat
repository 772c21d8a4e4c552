;; branches.wat -- if/else, br_table, select and block results.
;; classify(x):
;;   x < 0            -> -1
;;   x == 0..3        -> 10, 11, 12, 13 (via br_table)
;;   4 <= x < 100     -> 100 + (x odd ? 1 : 0)   (via select)
;;   x >= 100         -> 200
;; e.g. classify(-5) = -1, classify(2) = 12, classify(7) = 101,
;;      classify(8) = 100, classify(1000) = 200.
(module
  (func $classify (export "classify") (param $x i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $x) (i32.const 0))
      (then (i32.const -1))
      (else
        (if (result i32) (i32.lt_u (local.get $x) (i32.const 4))
          (then (call $small (local.get $x)))
          (else
            (if (result i32) (i32.lt_u (local.get $x) (i32.const 100))
              (then
                (select
                  (i32.const 101)
                  (i32.const 100)
                  (i32.and (local.get $x) (i32.const 1))))
              (else (i32.const 200))))))))

  ;; br_table over 0..3, default case unreachable in practice but returns 99
  (func $small (param $x i32) (result i32)
    (block $default
      (block $c3
        (block $c2
          (block $c1
            (block $c0
              (br_table $c0 $c1 $c2 $c3 $default (local.get $x)))
            (return (i32.const 10)))
          (return (i32.const 11)))
        (return (i32.const 12)))
      (return (i32.const 13)))
    (i32.const 99))

  ;; sign(x) using a typed select: -1, 0 or 1
  (func $sign (export "sign") (param $x i32) (result i32)
    (select (result i32)
      (i32.const -1)
      (select (result i32)
        (i32.const 1) (i32.const 0)
        (i32.gt_s (local.get $x) (i32.const 0)))
      (i32.lt_s (local.get $x) (i32.const 0))))
)
