;; multi.wat -- post-MVP features that compilers emit today:
;;   multi-value functions and blocks, reference types (funcref tables,
;;   ref.func, ref.null, ref.is_null, table.get/set/size/grow), and bulk
;;   memory (memory.fill, memory.copy, memory.init).
;;
;; exports:
;;   divmod(a, b) -> (a / b, a % b)            unsigned, multi-value result
;;   swap_sum(a, b) -> b*10 + a, swapping inside a multi-value block
;;                     (swap_sum(1, 2) = 21)
;;   divmod_packed(a, b) -> q*1000 + r using divmod's two results
;;                     (divmod_packed(47, 5) = 9002)
;;   dispatch(i, x) -> calls table slot i with x; returns -1 if slot is null
;;                     (slots: 0 = double, 1 = square, 2 = null, 3 = negate)
;;   null_count() -> number of null slots in the table (1)
;;   grow_table() -> table size after growing by 2 null slots (6 on first call)
;;   bulk() -> checksum after memory.fill / memory.copy / memory.init
;;                     (990988320, the same on every call)
(module
  (type $unop (func (param i32) (result i32)))
  (table $t (export "table") 4 8 funcref)
  (memory (export "memory") 1)
  (data $greeting "hello, probes!")
  (elem declare func $double $square $negate)

  (func $double (type $unop) (i32.shl (local.get 0) (i32.const 1)))
  (func $square (type $unop) (i32.mul (local.get 0) (local.get 0)))
  (func $negate (type $unop) (i32.sub (i32.const 0) (local.get 0)))

  (func $init
    (table.set $t (i32.const 0) (ref.func $double))
    (table.set $t (i32.const 1) (ref.func $square))
    (table.set $t (i32.const 2) (ref.null func))
    (table.set $t (i32.const 3) (ref.func $negate)))
  (start $init)

  (func $divmod (export "divmod") (param $a i32) (param $b i32) (result i32 i32)
    (i32.div_u (local.get $a) (local.get $b))
    (i32.rem_u (local.get $a) (local.get $b)))

  (func $swap_sum (export "swap_sum") (param $a i32) (param $b i32) (result i32)
    (local $x i32) (local $y i32)
    (local.get $a)
    (local.get $b)
    ;; a block taking two operands and yielding them swapped: (a b) -> (b a)
    (block (param i32 i32) (result i32 i32)
      (local.set $x)            ;; x = b
      (local.set $y)            ;; y = a
      (local.get $x)
      (local.get $y))
    (call $combine))            ;; b * 10 + a

  ;; calls the multi-value divmod and combines both results: q * 1000 + r
  (func $divmod_packed (export "divmod_packed") (param $a i32) (param $b i32) (result i32)
    (local $r i32)
    (call $divmod (local.get $a) (local.get $b))
    (local.set $r)
    (i32.add (i32.mul (i32.const 1000)) (local.get $r)))

  (func $combine (param i32 i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 10)) (local.get 1)))

  (func $dispatch (export "dispatch") (param $i i32) (param $x i32) (result i32)
    (if (result i32) (ref.is_null (table.get $t (local.get $i)))
      (then (i32.const -1))
      (else (call_indirect $t (type $unop) (local.get $x) (local.get $i)))))

  (func $null_count (export "null_count") (result i32)
    (local $i i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (table.size $t)))
        (if (ref.is_null (table.get $t (local.get $i)))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $grow_table (export "grow_table") (result i32)
    (drop (table.grow $t (ref.null func) (i32.const 2)))
    (table.size $t))

  (func $bulk (export "bulk") (result i32)
    (local $i i32) (local $sum i32)
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 64))     ;; [0,64) = 7
    (memory.init $greeting (i32.const 16) (i32.const 0) (i32.const 14))
    (memory.copy (i32.const 100) (i32.const 10) (i32.const 30))  ;; overlapping-free copy
    (memory.copy (i32.const 101) (i32.const 100) (i32.const 20)) ;; overlapping copy
    (loop $l
      (local.set $sum
        (i32.add (i32.mul (local.get $sum) (i32.const 31))
          (i32.load8_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 160))))
    (local.get $sum))
)
