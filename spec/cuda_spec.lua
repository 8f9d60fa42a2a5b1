-- The CUDA backend against the CPU backend, through the Lua API.  Without a
-- GPU every test here is reported as pending (busted counts them), never as
-- passed.  The op-by-op comparison of every backend slot is the C test
-- tests/test_cuda.c; this spec checks modules and whole training steps.
local gan = require "gan"
local nn = gan.nn

local has_gpu, why = pcall(gan.zeros, 1, "cuda")

-- normalised mean squared error of two tensors on any devices
local function nmse(a, b)
  local d = a:to("cpu"):clone():add(b:to("cpu"), -1, 1)   -- d = a - b... as a + (-1)*b
  local num, den = 0, 0
  local da, dd = a:to("cpu"):totable(), d:totable()
  local function walk(x, y)
    if type(x) == "table" then for i = 1, #x do walk(x[i], y[i]) end
    else num = num + y * y; den = den + x * x end
  end
  walk(da, dd)
  return num / math.max(den, 1e-30)
end

describe("the CUDA backend", function()
  if not has_gpu then
    it("agrees with the CPU op by op", function() pending("no GPU: " .. tostring(why)) end)
    it("trains 20 seed steps like the CPU", function() pending("no GPU: " .. tostring(why)) end)
    it("refuses --device cuda with a clear error", function()
      local ok, err = pcall(gan.device, "cuda")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("cuda"), err)
    end)
    return
  end

  after_each(function() gan.device("cpu") end)

  it("agrees with the CPU op by op", function()
    gan.seed(5)
    local x = gan.randn(32, 40)
    local layers = {
      function() return nn.Linear(40, 24) end,
      function() return nn.LeakyReLU(0.2) end,
      function() return nn.Sigmoid() end,
      function() return nn.Tanh() end,
      function() return nn.BatchNorm(40, {momentum = 0.8}) end,
    }
    for i, make in ipairs(layers) do
      gan.seed(i); gan.device("cpu")
      local mc = make()
      gan.seed(i); gan.device("cuda")
      local mg = make()
      local xg = x:to("cuda")
      local yc, yg = mc:forward(x), mg:forward(xg)
      assert.is_true(nmse(yc, yg) < 1e-8, "forward of layer " .. i)
      local g = gan.randn(yc:shape(), "cpu")
      mc:zero_grad(); mg:zero_grad()
      local gc, gg = mc:backward(x, g), mg:backward(xg, g:to("cuda"))
      assert.is_true(nmse(gc, gg) < 1e-8, "backward of layer " .. i)
      local pc, pg = mc:parameters(), mg:parameters()
      for k = 1, #pc do assert.is_true(nmse(pc[k].grad, pg[k].grad) < 1e-8) end
    end
  end)

  it("trains 20 seed steps like the CPU (dropout off, same seed)", function()
    local function run(device)
      gan.seed(11)
      gan.device(device)
      local S, Z, B = 32, 100, 100
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
        assert.is_true(math.abs(a - b) <= 1e-3 * math.abs(a), ("step %d: cpu %g cuda %g"):format(i, a, b))
      end
    end
  end)
end)
