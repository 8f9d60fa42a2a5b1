-- bench/gpu_steps.lua: the GPU checks that need no Busted, for a device
-- machine (which has no Lua beyond the gan binary):
--   1. module by module, forward and backward agree (normalised MSE < 1e-8),
--      the convolutions (cuDNN or im2col on CUDA, im2col on the CPU) included;
--   2. 20 training steps of the seed model (dropout off, the same seed) on
--      the CPU and on CUDA give losses equal within 1e-3 relative;
--   3. 10 steps of a small DCGAN (16x16, the script's architecture, flips
--      and shifts on) give losses equal within 1e-3 relative;
--   4. values left on the GPU (t:mean(out), t:sum(out), a loss) read by a
--      gan.reader equal the numbers the waiting reads give.
-- Exit status 0 only if every check passes; prints "N passed, M failed".
--   gan bench/gpu_steps.lua [--size 32]
local gan = require "gan"
local nn = gan.nn

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

-- Steps of a GAN as scripts/strawberry*.lua take them (D on a real then a
-- fake batch, then G through D frozen), Adam 2e-4/0.5 for both; 'aug' (or
-- nil) transforms the real batch.  Returns each step's {D fake loss, G loss}.
local function train(G, D, bce, real, Z, steps, aug)
  local B = real:size(1)
  local go = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5})
  local dop = gan.optim.Adam(D:parameters(), {lr = 2e-4, beta1 = 0.5})
  local ones, zeros, z = gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, Z)
  local losses = {}
  for _ = 1, steps do
    D:zero_grad()
    local xr = aug and aug:forward(real) or real
    bce:forward(D:forward(xr), ones); D:backward(xr, bce:backward(), false); dop:step()
    local fake = G:forward(z:normal())
    D:zero_grad()
    local dl = bce:forward(D:forward(fake), zeros); D:backward(fake, bce:backward(), false); dop:step()
    G:zero_grad()
    fake = G:forward(z:normal())
    local gl = bce:forward(D:forward(fake), ones)
    G:backward(z, D:backward_input(fake, bce:backward()), false); go:step()
    losses[#losses + 1] = {dl, gl}
  end
  return losses
end

-- The CPU's and CUDA's losses of run(device), equal within 1e-3 relative.
local function compare(name, run)
  local cpu, gpu = run("cpu"), run("cuda")
  check(#gpu == #cpu, ("%s: %d steps on cuda, %d on the cpu"):format(name, #gpu, #cpu))
  for i = 1, math.min(#cpu, #gpu) do
    for k = 1, 2 do
      local a, b = cpu[i][k], gpu[i][k]
      check(math.abs(a - b) <= 1e-3 * math.abs(a),
            ("%s step %d loss %d: cpu %g cuda %g"):format(name, i, k, a, b))
    end
  end
end

-- 2. twenty seed steps
compare("seed", function(device)
  gan.seed(11)
  gan.device(device)
  local S, Z, B = opts.size, 100, 100
  local function block(i, o)
    return nn.Sequential(nn.Linear(i, o), nn.LeakyReLU(0.2), nn.BatchNorm(o, {momentum = 0.8}))
  end
  local G = nn.Sequential(block(Z, 256), block(256, 512), block(512, 1024),
                          nn.Linear(1024, S * S * 3), nn.Sigmoid())
  local D = nn.Sequential(nn.Linear(S * S * 3, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 512),
                          nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                          nn.Linear(256, 1), nn.Sigmoid())
  return train(G, D, nn.BCE(), gan.rand(B, S * S * 3), Z, 20)
end)

-- 3. ten DCGAN steps at 16x16: scripts/strawberry_dcgan.lua's blocks
compare("dcgan", function(device)
  gan.seed(13)
  gan.device(device)
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
  return train(G, D, nn.BCEWithLogits(), gan.rand(B, 3, 16, 16), Z, 10,
               gan.augment.Augment{flip = true, translate = 0.125})
end)

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
