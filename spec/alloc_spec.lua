-- A training step allocates nothing: no tensor (counted by the backend,
-- gan.memory().allocs) and no Lua object (counted by the gan program's
-- allocator, gan.lua_allocs()).  The step is the seed's, on a small model.
local util = require "support.util"

local step_script = [[
local nn = gan.nn
local function block(i, o)
  return nn.Sequential(nn.Linear(i, o), nn.LeakyReLU(0.2), nn.BatchNorm(o, {momentum = 0.8}))
end
local G = nn.Sequential(block(8, 16), block(16, 32), nn.Linear(32, 12), nn.Sigmoid())
local D = nn.Sequential(nn.Linear(12, 16), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                        nn.Linear(16, 1), nn.Sigmoid())
local bce, B = nn.BCE(), 10
local go, dop = gan.optim.Adam(G:parameters()), gan.optim.Adam(D:parameters())
local real, ones, zeros, z = gan.rand(B, 12), gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, 8)
local function d_update(x, label)
  D:zero_grad()
  local p = D:forward(x)
  local loss = bce:forward(p, label)
  D:backward(x, bce:backward(), false)
  dop:step()
  return loss, p:mean()
end
local function step()
  d_update(real, ones)
  z:normal(); G:evaluate(); local fake = G:forward(z); G:train()
  d_update(fake, zeros)
  G:zero_grad(); z:normal(); fake = G:forward(z)
  bce:forward(D:forward(fake), ones)
  G:backward(z, D:backward_input(fake, bce:backward()), false)
  go:step()
end
for _ = 1, 3 do step() end                 -- buffers are made on the first step
local tensors = gan.memory().allocs
local objects = gan.lua_allocs()
for _ = 1, 50 do step() end
local objects2 = gan.lua_allocs()
print(objects2 - objects, gan.memory().allocs - tensors)
]]

describe("a training step", function()
  it("allocates no tensor and no Lua object after the first", function()
    local code, out, err = util.run({"-e", step_script})
    assert.equal(0, code, err)
    assert.equal("0\t0\n", out)
  end)

  it("is counted: the counters do move when something is allocated", function()
    local code, out = util.run({"-e", [[
      local t, o = gan.memory().allocs, gan.lua_allocs()
      local x = gan.zeros(3); local y = {1, 2, 3}
      print(gan.lua_allocs() > o, gan.memory().allocs > t)]]})
    assert.equal(0, code)
    assert.equal("true\ttrue\n", out)
  end)
end)
