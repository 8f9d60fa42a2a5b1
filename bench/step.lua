-- bench/step.lua: times the seed's training step (scripts/strawberry.lua)
-- on random data, for bench/cpu.sh.
--
--   gan bench/step.lua [--steps 20] [--warmup 3] [--size 128] [--batch 100]
--
-- The models, the D update and the G step are copied from
-- scripts/strawberry.lua (keep them identical when that file changes); the
-- only difference is the data: one random batch (B, 3, S, S) in [0, 1]
-- instead of decoded photos, so that image loading is not timed here
-- (bench/images.lua times it).  Prints machine-readable lines:
--   step_ms <median>          median wall time of one step after warmup
--   step_ms_min <min>         the fastest step
--   steps <n>                 timed steps
--   first_step_wall <epoch>   wall clock (date +%s.%N) at the end of step 1;
--                             cpu.sh subtracts its own start time
--   init_s, first_step_s      seconds to build the models (and the batch),
--                             and of step 1 alone
--   peak_rss_kb <kb>          VmHWM from /proc/self/status at the end
--   op_ms <call> <ms>         with --profile: median time per step in each
--                             model call (wrapped; the step code is unchanged)
local gan = require "gan"
local nn = gan.nn

local spec = {
  {"steps", 20, "timed steps", min = 1},
  {"warmup", 3, "untimed steps before them (step 1 is always untimed)", min = 0},
  {"size", 128, "images are SIZE x SIZE", min = 4, max = 1024},
  {"batch", 100, "images per batch", min = 1},
  {"latent", 100, "size of the noise vector", min = 1},
  {"seed", 1, "random seed", min = 0},
  {"profile", false, "also print the median ms of each model call per step"},
  {"device", "cpu", "cpu or cuda", choices = {"cpu", "cuda"}},
  {"precision", "fp32", "matrix products on the GPU: fp32 or tf32", choices = {"fp32", "tf32"}},
  {"reads", "async", "how the step's 4 values are read: async (as scripts/strawberry.lua "
                     .. "and run:fit: a reader, one step late), sync (5 numbers that each wait "
                     .. "for the GPU) or none (left on the device)",
   choices = {"async", "sync", "none"}},
}
local opts = gan.cli.parse(spec, arg or {}, "bench/step.lua",
  "Times the seed's training step (D real, D fake, G through frozen D).")

local t_init = gan.C.clock()
gan.seed(opts.seed)
gan.device(opts.device)
gan.precision(opts.precision)
local S, Z, B = opts.size, opts.latent, opts.batch
local pixels = S * S * 3

-- The models, as in scripts/strawberry.lua
local function block(n_in, n_out)            -- Dense + LeakyReLU(0.2) + BatchNorm(0.8)
  return nn.Sequential(nn.Linear(n_in, n_out), nn.LeakyReLU(0.2),
                       nn.BatchNorm(n_out, {momentum = 0.8}))
end

local G = nn.Sequential(                     -- z: (B, Z)
  block(Z, 256),                             -- (B, 256)
  block(256, 512),                           -- (B, 512)
  block(512, 1024),                          -- (B, 1024)
  nn.Linear(1024, pixels), nn.Sigmoid())     -- (B, S*S*3) in [0, 1]

local D = nn.Sequential(                     -- x: (B, S*S*3)
  nn.Linear(pixels, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.5),  -- (B, 1024)
  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.5),     -- (B, 512)
  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.5),      -- (B, 256)
  nn.Linear(256, 1), nn.Sigmoid())                              -- (B, 1): P(real)

local bce = nn.BCE()
local g_opt = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5})
local d_opt = gan.optim.Adam(D:parameters(), {lr = 2e-4, beta1 = 0.5})

local real_label = gan.ones(B, 1)
local fake_label = gan.zeros(B, 1)
local z = gan.empty(B, Z)
local real = gan.rand(B, 3, S, S)            -- the data: one random batch in [0, 1]

-- The D update, the D step and the G step: as in scripts/strawberry.lua
-- (with keras_predict = true and d_steps = 1, the seed's defaults).  With
-- --reads sync each value is also read as a number where it is made, as a
-- step of numbers does (5 waits for the GPU).
local sync = opts.reads == "sync"
local d_loss, g_loss, d_real, d_fake = gan.empty(1), gan.empty(1), gan.empty(1), gan.empty(1)

local function d_update(x, label, mean)
  D:zero_grad()
  local p = D:forward(x)                     -- (B, 1)
  local loss = bce:forward(p, label, false)  -- the loss, left on the device
  D:backward(x, bce:backward(), false)       -- no gradient w.r.t. the images
  d_opt:step()
  p:mean(mean)
  if sync then loss:item(); mean:item() end
  return loss
end

local function d_step(x)
  d_loss:copy(d_update(x, real_label, d_real))
  z:normal()
  G:evaluate()
  local fake = G:forward(z)                  -- (B, S*S*3)
  G:train()
  d_loss:add(d_update(fake, fake_label, d_fake), 0.5, 0.5)
  return d_loss, d_real, d_fake
end

local function g_step()
  G:zero_grad()
  z:normal()
  local fake = G:forward(z)
  local p = D:forward(fake)                  -- D still in training mode, as in Keras
  bce:forward(p, real_label, g_loss)
  if sync then g_loss:item() end
  G:backward(z, D:backward_input(fake, bce:backward()), false)
  g_opt:step()
  return g_loss
end

-- async: run:fit's reading -- start this step's read, take the previous one's
local readers, k = {gan.reader(), gan.reader()}, 1
local function step(x)
  local a, b, c = d_step(x)
  local g = g_step()
  if opts.reads == "async" then
    k = 3 - k
    readers[k]:start(a, g, b, c)
    return readers[3 - k]:values()
  end
  return a, g
end

local clock = gan.C.clock

-- --profile: wraps the methods the step calls with timers (the step
-- functions above stay as they are); prints "op_ms <name> <median ms per
-- step>" lines.  Time outside these calls (z:normal, bce, p:mean, Lua) is
-- "other".
local acc, per_step = {}, {}
if opts.profile then
  local function wrap(obj, name, label)
    local f = obj[name]
    obj[name] = function(...)
      local t0 = clock()
      local a, b = f(...)
      acc[label] = (acc[label] or 0) + (clock() - t0)
      return a, b
    end
  end
  wrap(D, "forward", "D forward")
  wrap(D, "backward", "D backward (weights)")
  wrap(D, "backward_input", "D backward_input")
  wrap(D, "zero_grad", "D zero_grad")
  wrap(G, "forward", "G forward")
  wrap(G, "backward", "G backward")
  wrap(G, "zero_grad", "G zero_grad")
  wrap(d_opt, "step", "D Adam")
  wrap(g_opt, "step", "G Adam")
end

local init_s = clock() - t_init             -- models, optimizers, the batch

-- Step 1: its end is the "first training step" of the start-up time.
local t1 = clock()
step(real)
local first_s = clock() - t1
local p = io.popen("date +%s.%N")
if p then
  print(("first_step_wall %s"):format(p:read("l") or "0"))
  p:close()
end
io.stdout:flush()

for _ = 1, opts.warmup do step(real) end

local times = {}
local d_last, g_last
for i = 1, opts.steps do
  local t0 = clock()
  acc = {}
  d_last, g_last = step(real)
  gan.synchronize()                          -- the GPU's queued work counts
  times[i] = (clock() - t0) * 1e3
  if opts.profile then
    local sum = 0
    for k, v in pairs(acc) do
      per_step[k] = per_step[k] or {}
      table.insert(per_step[k], v * 1e3)
      sum = sum + v * 1e3
    end
    per_step.other = per_step.other or {}
    table.insert(per_step.other, times[i] - sum)
  end
end
table.sort(times)
local n = #times
local median = n % 2 == 1 and times[(n + 1) // 2] or 0.5 * (times[n // 2] + times[n // 2 + 1])

local function vm_hwm()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function med(t)
  table.sort(t)
  local k = #t
  return k % 2 == 1 and t[(k + 1) // 2] or 0.5 * (t[k // 2] + t[k // 2 + 1])
end
local names = {}
for k in pairs(per_step) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do print(("op_ms %-22s %9.1f"):format(k, med(per_step[k]))) end
print(("init_s %.3f"):format(init_s))
print(("first_step_s %.3f"):format(first_s))
print(("steps %d"):format(n))
print(("step_ms %.3f"):format(median))
print(("step_ms_min %.3f"):format(times[1]))
if opts.reads == "async" then d_last, g_last = readers[k]:values()
else d_last, g_last = d_loss:item(), g_loss:item() end
print(("losses %.4f %.4f"):format(d_last, g_last))
print(("peak_rss_kb %d"):format(vm_hwm()))
-- every tensor at once at its peak: parameters, gradients, Adam's two moments,
-- activations and the batch (the denominator of the RSS target)
print(("tensor_peak_kb %d"):format(gan.memory("cpu").peak // 1024))
if opts.device == "cuda" then
  print(("peak_gpu_mb %.1f"):format(gan.memory("cuda").peak / 2^20))
end
