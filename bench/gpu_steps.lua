-- bench/gpu_steps.lua: the GPU checks that need no Busted, for a device
-- machine (which has no Lua beyond the gan binary):
--   1. module by module, forward and backward agree (normalised MSE < 1e-8),
--      the convolutions (cuDNN or im2col on CUDA, im2col on the CPU) included;
--   2. 20 training steps of the seed model (dropout off, the same seed) on
--      the CPU and on CUDA give losses equal within 1e-3 relative: every
--      step from the same state (lockstep), and the first 5 of two runs on
--      their own (a GAN amplifies rounding; compare() says why);
--   3. the same for 10 steps of a small DCGAN (16x16, the script's
--      architecture, flips and shifts on);
--   4. values left on the GPU (t:mean(out), t:sum(out), a loss) read by a
--      gan.reader equal the numbers the waiting reads give.
-- Exit status 0 only if every check passes; prints "N passed, M failed".
--   gan bench/gpu_steps.lua [--size 32]
local gan = require "gan"
local nn = gan.nn
local seed_model = dofile(((arg and arg[0] or ""):match("^(.*)[/\\]") or "bench") .. "/seed_model.lua")

local opts = gan.cli.parse({{"size", 32, "image side of the seed model", min = 4}},
                           arg or {}, "bench/gpu_steps.lua")
local ok_gpu, why = pcall(gan.zeros, 1, "cuda")
if not ok_gpu then
  print("gpu_steps: skipped (" .. tostring(why) .. ")")
  os.exit(77)
end

local passed, failed = 0, 0
local function check(cond, what)
  if cond then passed = passed + 1 else failed = failed + 1; print("FAIL " .. what) end
end

local function flat(t, out)
  out = out or {}
  if type(t) == "table" then for _, v in ipairs(t) do flat(v, out) end else out[#out + 1] = t end
  return out
end
local function nmse(a, b)
  local x, y = flat(a:to("cpu"):totable()), flat(b:to("cpu"):totable())
  local num, den = 0, 0
  for i = 1, #x do num = num + (x[i] - y[i]) ^ 2; den = den + x[i] ^ 2 end
  return num / math.max(den, 1e-30)
end

-- 1. modules: a maker and the shape of its input
local makers = {
  Linear = {function() return nn.Linear(40, 24) end, {32, 40}},
  LeakyReLU = {function() return nn.LeakyReLU(0.2) end, {32, 40}},
  Sigmoid = {function() return nn.Sigmoid() end, {32, 40}},
  Tanh = {function() return nn.Tanh() end, {32, 40}},
  ReLU = {function() return nn.ReLU() end, {32, 40}},
  -- a Linear and its activation in one call (on CUDA, one kernel after the product)
  Linear_LeakyReLU = {function() return nn.Sequential(nn.Linear(40, 24), nn.LeakyReLU(0.2)) end,
                      {32, 40}},
  Linear_Sigmoid = {function() return nn.Sequential(nn.Linear(40, 24), nn.Sigmoid()) end,
                    {32, 40}},
  BatchNorm = {function() return nn.BatchNorm(40, {momentum = 0.8}) end, {32, 40}},
  Conv2d = {function() return nn.Conv2d(3, 8, 4, {stride = 2, padding = 1}) end, {8, 3, 16, 16}},
  Conv2d_odd = {function() return nn.Conv2d(5, 6, 3, {padding = 1}) end, {3, 5, 7, 9}},
  ConvTranspose2d = {function() return nn.ConvTranspose2d(8, 4, 4, {stride = 2, padding = 1}) end,
                     {8, 8, 4, 4}},
  ConvTranspose2d_first = {function() return nn.ConvTranspose2d(100, 64, 4, {bias = false}) end,
                           {16, 100, 1, 1}},
  BatchNorm2d = {function() return nn.BatchNorm2d(8) end, {8, 8, 5, 5}},
  Augment = {function() return gan.augment.Augment{flip = true, translate = 0.25} end,
             {8, 3, 16, 16}},
}
for name, mk in pairs(makers) do
  local make, shape = mk[1], mk[2]
  gan.seed(3); gan.device("cpu")
  local mc = make()
  gan.seed(3); gan.device("cuda")
  local mg = make()                   -- the same initial weights as mc
  local x = gan.randn(shape, "cpu")
  local xg = x:to("cuda")
  gan.seed(5)
  local yc = mc:forward(x)
  gan.seed(5)
  local yg = mg:forward(xg)
  local e = nmse(yc, yg)
  check(e < 1e-8, ("%s forward nmse %g"):format(name, e))
  local g = gan.randn(yc:shape(), "cpu")
  mc:zero_grad(); mg:zero_grad()
  e = nmse(mc:backward(x, g), mg:backward(xg, g:to("cuda")))
  check(e < 1e-8, ("%s backward nmse %g"):format(name, e))
  local pc, pg = mc:parameters(), mg:parameters()
  for k = 1, #pc do
    e = nmse(pc[k].grad, pg[k].grad)
    check(e < 1e-8, ("%s grad %s nmse %g"):format(name, pc[k].name, e))
  end
end

-- Every tensor of a pair's state: parameters, running statistics, moments.
local function state(r)
  local t = {}
  for _, m in ipairs{r.G, r.D} do
    for _, p in ipairs(m:parameters()) do t[#t + 1] = p.value end
    for _, b in ipairs(m.buffers and m:buffers() or {}) do t[#t + 1] = b.value end
  end
  for _, o in ipairs{r.go, r.dop} do
    for i = 1, #o.m do t[#t + 1] = o.m[i]; t[#t + 1] = o.v[i] end
  end
  return t
end

-- The CPU's and CUDA's steps of make(device) compared.  A GAN step amplifies
-- rounding: on the CPU alone, scaling G's gradient by 1 + 3e-7 at step 1
-- moves the losses by 1e-3 within 15 steps (bench/README.md).  So:
--  - lockstep: before each step the CUDA pair takes the CPU pair's whole
--    state (and the generator's); the step's losses must agree within 1e-3
--    relative, every step;
--  - free-running: each pair on its own from the same seed; the first
--    'free' steps must agree within 1e-3, the rest are printed.
local function compare(name, make, steps, free)
  gan.seed(11); gan.device("cpu")
  local c = make("cpu")
  gan.seed(11); gan.device("cuda")
  local g = make("cuda")
  local sc, sg = state(c), state(g)
  check(#sc == #sg, ("%s: %d state tensors on the cpu, %d on cuda"):format(name, #sc, #sg))
  local rng = gan.rng_state()
  for i = 1, steps do
    for k = 1, #sc do sg[k]:copy(sc[k]) end
    g.go.t, g.dop.t = c.go.t, c.dop.t
    gan.rng_state(rng); gan.device("cpu")
    local a = c.step()
    local after = gan.rng_state()
    gan.rng_state(rng); gan.device("cuda")
    local b = g.step()
    check(gan.rng_state() == after, ("%s lockstep %d: the devices drew differently"):format(name, i))
    rng = after
    for k = 1, 2 do
      check(math.abs(a[k] - b[k]) <= 1e-3 * math.abs(a[k]),
            ("%s lockstep %d loss %d: cpu %g cuda %g"):format(name, i, k, a[k], b[k]))
    end
  end
  -- free-running
  local losses = {}
  for _, dev in ipairs{"cpu", "cuda"} do
    gan.seed(11); gan.device(dev)
    local r = make(dev)
    losses[dev] = {}
    for i = 1, steps do losses[dev][i] = r.step() end
  end
  local parted
  for i = 1, steps do
    for k = 1, 2 do
      local a, b = losses.cpu[i][k], losses.cuda[i][k]
      local close = math.abs(a - b) <= 1e-3 * math.abs(a)
      if i <= free then
        check(close, ("%s free step %d loss %d: cpu %g cuda %g"):format(name, i, k, a, b))
      elseif not close and not parted then
        parted = i
      end
    end
  end
  print(("%s: free-running, the losses agree within 1e-3 %s"):format(name,
    parted and ("up to step " .. (parted - 1)) or ("for all " .. steps .. " steps")))
end

-- 2. twenty seed steps
compare("seed", function()
  local S, Z, B = opts.size, 100, 100
  local G, D = seed_model.model(S, Z)
  return seed_model.pair(G, D, nn.BCE(), gan.rand(B, S * S * 3), Z)
end, 20, 5)

-- 3. ten DCGAN steps at 16x16: scripts/strawberry_dcgan.lua's blocks
compare("dcgan", function()
  local Z, B, c = 100, 16, 16
  local G = nn.Sequential(nn.Reshape(Z, 1, 1),
    nn.ConvTranspose2d(Z, 2 * c, 4, {bias = false}), nn.BatchNorm2d(2 * c), nn.ReLU(),  -- 4x4
    nn.ConvTranspose2d(2 * c, c, 4, {stride = 2, padding = 1, bias = false}),
    nn.BatchNorm2d(c), nn.ReLU(),                                                       -- 8x8
    nn.ConvTranspose2d(c, 3, 4, {stride = 2, padding = 1, bias = false}), nn.Tanh())    -- 16x16
  local D = nn.Sequential(
    nn.Conv2d(3, c, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),                   -- 8x8
    nn.Conv2d(c, 2 * c, 4, {stride = 2, padding = 1, bias = false}), nn.BatchNorm2d(2 * c),
    nn.LeakyReLU(0.2),                                                                  -- 4x4
    nn.Conv2d(2 * c, 1, 4, {bias = false}), nn.Flatten())                               -- 1
  return seed_model.pair(G, D, nn.BCEWithLogits(), gan.rand(B, 3, 16, 16), Z,
                         gan.augment.Augment{flip = true, translate = 0.125}, "paper")
end, 10, 5)

-- 4. values left on the GPU and read by a reader (what run:fit does with
-- the scripts' steps): the same numbers as the waiting reads
do
  gan.seed(17)
  gan.device("cuda")
  local x, p, y = gan.randn(1000, 37), gan.rand(100, 1), gan.ones(100, 1)
  local m, s, l = gan.empty(1), gan.empty(1), gan.empty(1)
  local bce = nn.BCE()
  x:mean(m)
  x:sum(s)
  bce:forward(p, y, l)
  local r = gan.reader():start(m, s, 2, l)
  local vm, vs, two, vl = r:values()
  local em, es, el = x:mean(), x:sum(), bce:forward(p, y)
  check(math.abs(vm - em) <= 1e-6 * (1 + math.abs(em)), ("reader: mean %.9g, t:mean() %.9g"):format(vm, em))
  check(math.abs(vs - es) <= 1e-5 * (1 + math.abs(es)), ("reader: sum %.9g, t:sum() %.9g"):format(vs, es))
  check(two == 2 and vl == el, ("reader: %s and loss %.9g, bce:forward %.9g"):format(two, vl, el))
  check(r:ready(), "reader: ready after its values were taken")
end

print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
