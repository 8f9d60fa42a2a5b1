-- bench/gpu_steps.lua: the GPU checks that need no Busted, for a device
-- machine (which has no Lua beyond the gan binary):
--   1. 20 training steps of the seed model (dropout off, the same seed) on
--      the CPU and on CUDA give losses equal within 1e-3 relative;
--   2. module by module, forward and backward agree (normalised MSE < 1e-8).
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

-- 1. modules
local makers = {
  Linear = function() return nn.Linear(40, 24) end,
  LeakyReLU = function() return nn.LeakyReLU(0.2) end,
  Sigmoid = function() return nn.Sigmoid() end,
  Tanh = function() return nn.Tanh() end,
  ReLU = function() return nn.ReLU() end,
  BatchNorm = function() return nn.BatchNorm(40, {momentum = 0.8}) end,
}
for name, make in pairs(makers) do
  gan.seed(3); gan.device("cpu")
  local x = gan.randn(32, 40)
  local mc = make()
  gan.seed(3); gan.device("cuda")
  local mg = make()
  local xg = x:to("cuda")
  local yc, yg = mc:forward(x), mg:forward(xg)
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

-- 2. twenty seed steps
local function run(device)
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
  local bce = nn.BCE()
  local go = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5})
  local dop = gan.optim.Adam(D:parameters(), {lr = 2e-4, beta1 = 0.5})
  local real, ones, zeros, z = gan.rand(B, S * S * 3), gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, Z)
  local losses = {}
  for _ = 1, 20 do
    D:zero_grad()
    bce:forward(D:forward(real), ones); D:backward(real, bce:backward(), false); dop:step()
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
local cpu, gpu = run("cpu"), run("cuda")
for i = 1, 20 do
  for k = 1, 2 do
    local a, b = cpu[i][k], gpu[i][k]
    check(math.abs(a - b) <= 1e-3 * math.abs(a), ("step %d loss %d: cpu %g cuda %g"):format(i, k, a, b))
  end
end
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
