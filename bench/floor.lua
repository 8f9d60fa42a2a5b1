-- bench/floor.lua: a lower bound for one training step of the seed, measured
-- on this machine in this run, for bench/cpu.sh.
--
--   gan bench/floor.lua [--size 128] [--batch 100] [--latent 100] [--reps 3]
--                       [--device cpu|cuda] [--precision fp32|tf32]
--
-- On cuda the products are cuBLAS's (at --precision) and the bandwidth the
-- device's, each timing closed by gan.synchronize(); bench/gpu.sh divides
-- the engine's step by it.
-- floor = (time of every matrix product the engine performs in one step,
--          each timed alone through gan.C.matmul, i.e. OpenBLAS sgemm at
--          exactly the step's shapes and transposes)
--       + (Adam's memory traffic / memory bandwidth: the faster of a large
--          one-thread copy and a large all-core axpy)
-- Everything else the step does (activations, batch norm, dropout, BCE,
-- zero_grad, bias broadcasts, the Lua glue) counts as zero, so a step can
-- not be faster than this unless the products themselves got faster.
--
-- The products of one step (B batch, P = S*S*3 pixels; a layer n_in -> n_out
-- has weight (n_out, n_in); "fwd" is out = x W^T (sgemm N,T, M=B N=out K=in),
-- "dx" is dx = dy W (N,N, M=B N=in K=out), "dW" is dW = dy^T x (T,N, M=out
-- N=in K=B), beta 0 as in the engine, whose zero_grad puts its zeros off):
--   D layers  P->1024, 1024->512, 512->256, 256->1
--   G layers  Z->256, 256->512, 512->1024, 1024->P
--   D update (real):  D fwd (4 layers), D dW (4 layers), D dx (layers 2-4;
--                     layer 1 is skipped: D:backward(x, g, false))
--   G fwd for the fakes (4 layers, evaluation mode)
--   D update (fake):  same as the real one
--   G step:           G fwd (4), D fwd (4), D dx only (all 4 layers:
--                     backward_input), G dW (4), G dx (layers 2-4)
-- So: D fwd x3, D dW x2, D dx(2-4) x2, D dx(1-4) x1, G fwd x2, G dW x1,
-- G dx(2-4) x1.
-- Adam: one step over D's parameters per D update (two) and one over G's;
-- per parameter it reads p, g, m, v and writes p, m, v: 7 floats, 28 bytes.
--
-- Prints: floor_ms, products_ms, adam_ms, gflop (products of one step),
-- sgemm_gflops (their mean rate), bw_gbs (bandwidth, reads + writes; the faster
-- of bw_copy_gbs and bw_axpy_gbs),
-- adam_mb (bytes Adam moves per step), and one "gemm" line per shape.
local gan = require "gan"

local spec = {
  {"size", 128, "images are SIZE x SIZE", min = 4, max = 1024},
  {"batch", 100, "images per batch", min = 1},
  {"latent", 100, "size of the noise vector", min = 1},
  {"warm", 3, "untimed runs per shape before the timed ones", min = 0},
  {"reps", 3, "timings per shape (the fastest is kept)", min = 1},
  {"runs", 0, "products per timing, divided out (0: 1 on the CPU, 20 on a GPU)", min = 0},
  {"copy_mb", 256, "size of each tensor of the bandwidth copy, MB", min = 1},
  {"verbose", false, "print one line per product shape"},
  {"device", "cpu", "cpu or cuda", choices = {"cpu", "cuda"}},
  {"precision", "fp32", "matrix products on the GPU: fp32 or tf32", choices = {"fp32", "tf32"}},
}
local opts = gan.cli.parse(spec, arg or {}, "bench/floor.lua",
  "Measures the product + Adam floor of the seed's training step.")
gan.device(opts.device)
gan.precision(opts.precision)
local B, P, Z = opts.batch, opts.size * opts.size * 3, opts.latent
-- On a GPU one product alone, closed by a wait for the device, counts a
-- launch and the wait's round trip (tens of microseconds) that a step's
-- queued products do not pay: D's 256 -> 1 products take about as long
-- as the round trip.  There each timing runs the product 20 times back to
-- back and divides by 20.
local runs = opts.runs > 0 and opts.runs or (opts.device == "cuda" and 20 or 1)
-- the host's clock, after the device's queue has drained
local function clock()
  gan.synchronize()
  return gan.C.clock()
end

local D_layers = {{P, 1024}, {1024, 512}, {512, 256}, {256, 1}}
local G_layers = {{Z, 256}, {256, 512}, {512, 1024}, {1024, P}}

-- products[key] = {kind, n_in, n_out, count}
local products, order = {}, {}
local function add(kind, layers, from, count)
  for i = from, #layers do
    local n_in, n_out = layers[i][1], layers[i][2]
    local key = ("%s %d %d"):format(kind, n_in, n_out)
    if not products[key] then
      products[key] = {kind = kind, n_in = n_in, n_out = n_out, count = 0}
      order[#order + 1] = key
    end
    products[key].count = products[key].count + count
  end
end
add("fwd", D_layers, 1, 3)
add("dW", D_layers, 1, 2)
add("dx", D_layers, 2, 2)
add("dx", D_layers, 1, 1)
add("fwd", G_layers, 1, 2)
add("dW", G_layers, 1, 1)
add("dx", G_layers, 2, 1)

-- Times one product shape with gan.C.matmul on preallocated tensors: the
-- fastest of opts.reps timings (each of `runs` products) after opts.warm
-- untimed ones.  The warm-up
-- matters: on this machine the first runs of the 49152-wide products on
-- fresh tensors are up to 2.5x slower than later ones (measured 434, 373,
-- 233, 182, 174 ms for the first five D-forward products), and the engine's
-- step, after its own warm-up, runs on warm buffers.
local function time_product(p)
  local n_in, n_out = p.n_in, p.n_out
  local W, run = gan.rand(n_out, n_in)
  if p.kind == "fwd" then
    local x, out = gan.rand(B, n_in), gan.empty(B, n_out)
    run = function() gan.C.matmul(out, x, false, W, true, 1, 1) end
  elseif p.kind == "dx" then
    local dy, dx = gan.rand(B, n_out), gan.empty(B, n_in)
    run = function() gan.C.matmul(dx, dy, false, W, false, 1, 0) end
  else
    local dy, x, dW = gan.rand(B, n_out), gan.rand(B, n_in), gan.zeros(n_out, n_in)
    run = function() gan.C.matmul(dW, dy, true, x, false, 1, 0) end
  end
  for _ = 1, math.max(opts.warm, 1) do run() end
  local best = math.huge
  for _ = 1, opts.reps do
    local t0 = clock()
    for _ = 1, runs do run() end
    best = math.min(best, (clock() - t0) / runs)
  end
  return best
end

local products_s, flop = 0, 0
for _, key in ipairs(order) do
  local p = products[key]
  local s = time_product(p)
  local f = 2.0 * B * p.n_in * p.n_out
  products_s = products_s + s * p.count
  flop = flop + f * p.count
  if opts.verbose then
    print(("gemm %-3s %6d -> %-6d x%d  %8.3f ms  %6.1f GFLOP/s"):format(
      p.kind, p.n_in, p.n_out, p.count, s * 1e3, f / s / 1e9))
  end
  collectgarbage()
end

-- Memory bandwidth: the faster of two passes over two large tensors.
--   dst:copy(src)       memcpy (on a GPU, a device-to-device copy): reads
--                       src, writes dst (2 moves)
--   dst:add(src, a, b)  dst = a*src + b*dst on every core (OpenMP): reads src
--                       and dst, writes dst (3 moves), Adam's pattern in small
-- The copy alone under-rates the machine: one core cannot saturate memory,
-- and Adam runs on all of them.
local n = opts.copy_mb * 1024 * 1024 // 4
local src, dst = gan.rand(n), gan.empty(n)
dst:copy(src)
local function fastest(f)
  f()
  local best = math.huge
  for _ = 1, 3 do
    local t0 = clock()
    f()
    best = math.min(best, clock() - t0)
  end
  return best
end
local bw_copy = 2.0 * n * 4 / fastest(function() dst:copy(src) end)
local bw_axpy = 3.0 * n * 4 / fastest(function() dst:add(src, 0.5, 0.5) end)
local bw = math.max(bw_copy, bw_axpy)           -- bytes per second
src, dst = nil, nil
collectgarbage()

-- Adam's traffic: the parameter counts of the seed's two models.
local function params(layers, bn)
  local c = 0
  for i, l in ipairs(layers) do
    c = c + l[1] * l[2] + l[2]                  -- weight and bias
    if bn and i < #layers then c = c + 2 * l[2] end  -- BatchNorm gamma and beta
  end
  return c
end
local nD, nG = params(D_layers, false), params(G_layers, true)
local adam_bytes = 28.0 * (2 * nD + nG)
local adam_s = adam_bytes / bw

print(("params_d %d"):format(nD))
print(("params_g %d"):format(nG))
print(("gflop %.3f"):format(flop / 1e9))
print(("products_ms %.3f"):format(products_s * 1e3))
print(("sgemm_gflops %.1f"):format(flop / products_s / 1e9))
print(("bw_gbs %.2f"):format(bw / 1e9))
print(("bw_copy_gbs %.2f"):format(bw_copy / 1e9))
print(("bw_axpy_gbs %.2f"):format(bw_axpy / 1e9))
print(("adam_mb %.1f"):format(adam_bytes / 1e6))
print(("adam_ms %.3f"):format(adam_s * 1e3))
print(("floor_ms %.3f"):format((products_s + adam_s) * 1e3))
