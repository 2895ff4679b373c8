#!/usr/bin/env bash
# Plants each one-line bug of issue 14 in this worktree, one at a time, runs the fast tests aimed
# at it and restores the file (git checkout). Prints KILLED or SURVIVED per bug. Not run in CI.
# Usage: tests/mutation/plant_bugs.sh  (from the repository root; needs a clean tree for the files)
set -u
PY=${PYTHON:-.venv/bin/python}
run() {  # name file sed-expression pytest-args...
  local name=$1 file=$2 expr=$3; shift 3
  if ! git diff --quiet -- "$file"; then echo "$file has local changes: refusing"; exit 2; fi
  sed -i "$expr" "$file"
  if git diff --quiet -- "$file"; then echo "NOT PLANTED  $name (pattern not found)"; return; fi
  if timeout 900 "$PY" -m pytest -q -x -p no:cacheprovider "$@" >/tmp/plant_$$.log 2>&1; then
    echo "SURVIVED     $name"
  else
    echo "KILLED       $name  ($(grep -m1 -o 'FAILED [^ ]*' /tmp/plant_$$.log))"
  fi
  git checkout -- "$file"
}
K=tests/test_bug_killers.py
run "0 - x simplified to x" bpir/passes/simplify.py \
  's/_IDENTITY_LEFT = {"mul": 1, "add": 0}/_IDENTITY_LEFT = {"mul": 1, "add": 0, "sub": 0}/' $K -k zero_minus
run "numba fused max starts at 0" backends/numba/loops.py \
  's/return f"{dt}(-np.inf)" if v.dtype.startswith("f") else f"np.iinfo({dt}).min"/return f"{dt}(0)"/' $K -k all_negative
run "float unary ops / mean of ints typed f32" frontends/numpy_api.py \
  's/return d if d.startswith("f") else "f64"/return d if d.startswith("f") else "f32"/' $K -k float_ops_on_integers
run "erf gradient sign flipped" bpir/ops/elementwise.py \
  's|_s(b, 2 / math.sqrt(math.pi), x)|_s(b, -2 / math.sqrt(math.pi), x)|' $K -k erf
run "workspace slot reused under a live view" backends/numba/backend.py \
  's/base\[v\] = base\[n.inputs\[0\]\] if n.op in VIEW_OPS else v/base[v] = v/' $K -k workspace
run "check_grad float64 rtol 1e-6 -> 1e-1" bpir/gradcheck.py \
  's/"float64": (1e-6, 1e-8)/"float64": (1e-1, 1e-8)/' $K -k one_percent
run "abs gradient uses sign(|x|)" bpir/ops/elementwise.py \
  's/_unary("abs", lambda b, x, y, g: b.mul(g, b.sign(x)))/_unary("abs", lambda b, x, y, g: b.mul(g, b.sign(y)))/' $K -k abs_gradient
run "max_pool padded with 0 (numpy kernel)" backends/numpy/kernels.py \
  's/win = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, (1, 1))/win = _windows(_pad_hw(x, padding, 0.0), kernel, stride, (1, 1))/' $K -k "pools and max"
run "max_pool padded with 0 (decomposition)" bpir/ops/windows.py \
  '112s/float("-inf")/0.0/' $K -k "pools and max"
run "max_pool padded with 0 (jax kernel)" backends/jax/kernels.py \
  's/lax.reduce_window(x, -jnp.inf, lax.max/lax.reduce_window(x, 0.0, lax.max/' $K -k "pools and max"
run "conv kernel ignores dilation (numpy kernel)" backends/numpy/kernels.py \
  's/win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation)/win = _windows(_pad_hw(x, padding), (kh, kw), stride, (1, 1))/' $K -k conv2d
run "avg_pool divisor excludes padding" backends/numpy/kernels.py \
  '/^def avg_pool2d/,/^def /s/kernel\[0\] \* kernel\[1\]/1/' $K -k "pools and avg"
# found by cosmic-ray (tests/mutation/run_mutation.py) and the follow-ups
run "CUDA reduction max starts at 0" backends/cuda/kernels.py \
  '146s/cv.literal(float("-inf") if kind != "sum" else 0, acc)/cv.literal(0.0, acc)/' $K -k "all_negative and cuda"
run "trailing reduction: flat position split wrong (two kept axes)" backends/numba/loops.py \
  's/                last = j == len(kept) - 1/                last = j < len(kept) - 1/' $K -k "rank_3 and numba"
run "sub accepts bool operands" bpir/ops/elementwise.py \
  's/_binary("sub", lambda b, x, y, out, g: (g, b.neg(g)), no_bool=True)/_binary("sub", lambda b, x, y, out, g: (g, b.neg(g)), no_bool=False)/' tests/test_type_rules.py
run "custom_vjp second order: residual cotangents misplaced" bpir/ops/source.py \
  's/\[None\] \* n + list(res_cts)/list(res_cts) + [None] * n/' tests/test_autodiff.py -k "differentiable_twice and numpy"
run "trailing reductions never take the scalar-accumulator form" backends/numba/loops.py \
  's/and max(a\["axes"\]) == rank - 1:/and max(a["axes"]) == rank ** 1:/' $K -k scalar_accumulator
run "slice VJP high padding by xor" bpir/ops/layout.py \
  's/    hi = tuple(d - st - ((n - 1) \* s + 1 if n else 0)/    hi = tuple(d - st ^ ((n - 1) * s + 1 if n else 0)/' $K -k "slice_gradient and numpy"
run "fused reduction prologue also materialised" bpir/passes/fusion.py \
  '131s/len(users\[r\]) > 1\]/len(users[r]) >= 1]/' $K -k prologue
