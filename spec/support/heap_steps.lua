-- spec/support/heap_steps.lua: the seed's training step, N times after two
-- warm-up steps (the first makes the buffers), then one line: the tensors
-- and the Lua objects those N steps allocated.
--
--   gan spec/support/heap_steps.lua N
--
-- spec/alloc_spec.lua requires "0\t0" (the engine's and Lua's own counters),
-- and runs it with tests/malloc_count.c preloaded for two values of N,
-- requiring the same count of heap allocations for both, so a step calls
-- malloc zero times anywhere in the process (Lua, the engine, OpenBLAS,
-- OpenMP).  valgrind's "total heap usage: A allocs" gives the same verdict.
-- The model is the seed's (scripts/strawberry.lua) at 8x8 and batch 100, so
-- every elementwise loop still crosses the OpenMP threshold.
local gan = require "gan"
local nn = gan.nn
local n = tonumber(arg and arg[1]) or error("usage: heap_steps.lua N")
gan.seed(1)
gan.device("cpu")
local B, Z, P = 100, 100, 8 * 8 * 3

local function block(i, o)
  return nn.Sequential(nn.Linear(i, o), nn.LeakyReLU(0.2), nn.BatchNorm(o, {momentum = 0.8}))
end
local G = nn.Sequential(block(Z, 256), block(256, 512), block(512, 1024),
                        nn.Linear(1024, P), nn.Sigmoid())
local D = nn.Sequential(
  nn.Linear(P, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.5),
  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.5),
  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.5),
  nn.Linear(256, 1), nn.Sigmoid())
local bce = nn.BCE()
local g_opt = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5})
local d_opt = gan.optim.Adam(D:parameters(), {lr = 2e-4, beta1 = 0.5})
local real, ones, zeros, z = gan.rand(B, P), gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, Z)

-- the step's values stay on the device and are read as gan/train.lua's fit
-- reads them: step N's read started, then step N-1's values taken
local d_loss, g_loss, d_real, d_fake = gan.empty(1), gan.empty(1), gan.empty(1), gan.empty(1)
local function d_update(x, label, mean)
  D:zero_grad()
  local p = D:forward(x)
  local loss = bce:forward(p, label, false)
  D:backward(x, bce:backward(), false)
  d_opt:step()
  p:mean(mean)
  return loss
end
local readers, k, sum = {gan.reader(), gan.reader()}, 1, 0
local function step()
  d_loss:copy(d_update(real, ones, d_real))
  z:normal(); G:evaluate(); local fake = G:forward(z); G:train()
  d_loss:add(d_update(fake, zeros, d_fake), 0.5, 0.5)
  G:zero_grad(); z:normal(); fake = G:forward(z)
  bce:forward(D:forward(fake), ones, g_loss)
  G:backward(z, D:backward_input(fake, bce:backward()), false)
  g_opt:step()
  k = 3 - k
  readers[k]:start(d_loss, g_loss, d_real, d_fake)
  local a, b, c, d = readers[3 - k]:values()   -- the previous step's
  if a then sum = sum + a + b + c + d end
end

for _ = 1, 2 do step() end                   -- buffers are made on the first step
local tensors, objects = gan.memory().allocs, gan.lua_allocs()
for _ = 1, n do step() end
local objects2 = gan.lua_allocs()              -- read before print allocates
print(objects2 - objects, gan.memory().allocs - tensors)
