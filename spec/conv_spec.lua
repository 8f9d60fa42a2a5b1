-- gan.nn's convolutional modules (gan/conv.lua), gan.augment, and a short
-- run of scripts/strawberry_dcgan.lua.
--
-- The gradient checks compare each module's backward with central finite
-- differences of L = sum(w .* forward(x)), w fixed and random, for the
-- input and every parameter (tests/test_conv.c does the same for the core
-- ops at more shapes).
local gan = require "gan"
local nn = gan.nn
local util = require "support.util"
local png = require "support.png"

-- every value of a tensor, as a flat list
local function flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then
      for _, x in ipairs(v) do walk(x) end
    else
      out[#out + 1] = v
    end
  end
  walk(t:totable())
  return out
end

local function set_flat(t, values)
  t:copy(gan.tensor(values, t:device()))
end

local function dot(a, b)
  local fa, fb, s = flat(a), flat(b), 0
  for i = 1, #fa do s = s + fa[i] * fb[i] end
  return s
end

-- Central differences of L = sum(w .* m:forward(x)) over every element of
-- t (the input x or a parameter), against the analytic gradient 'grad'.
-- Returns the worst relative error (floor 1e-2, as test_ops.c).
local function worst_error(m, x, w, t, grad, h)
  h = h or 1e-2
  local values, analytic = flat(t), flat(grad)
  local worst = 0
  for i = 1, #values do
    local v = values[i]
    values[i] = v + h
    set_flat(t, values)
    local lp = dot(w, m:forward(x))
    values[i] = v - h
    set_flat(t, values)
    local lm = dot(w, m:forward(x))
    values[i] = v
    set_flat(t, values)
    local num = (lp - lm) / (2 * h)
    local err = math.abs(num - analytic[i]) / math.max(1e-2, math.abs(num) + math.abs(analytic[i]))
    worst = math.max(worst, err)
  end
  return worst
end

-- backward's gradients of L, then finite differences for x and each parameter
local function gradcheck(m, x, tol, h)
  m:zero_grad()
  local y = m:forward(x)
  local w = gan.randn(y:shape())
  local gx = m:backward(x, w):clone()
  local grads = {}
  for _, p in ipairs(m:parameters()) do grads[#grads + 1] = {p, p.grad:clone()} end
  assert.is_true(worst_error(m, x, w, x, gx, h) < (tol or 1e-2), "input gradient of " .. tostring(m))
  for _, pg in ipairs(grads) do
    local e = worst_error(m, x, w, pg[1].value, pg[2], h)
    assert.is_true(e < (tol or 1e-2), ("gradient of %s of %s: error %g"):format(pg[1].name,
      tostring(m), e))
  end
end

-- The device's backend may not have convolutions yet (CUDA): then these
-- specs are pending rather than failing.
local function conv_available()
  gan.device(util.device)
  local ok, err = pcall(function() nn.Conv2d(1, 1, 1):forward(gan.zeros(1, 1, 2, 2)) end)
  return ok, err
end

describe("convolutional modules", function()
  local available, why = conv_available()
  if not available then
    pending("convolutions on " .. util.device .. ": " .. tostring(why))
    return
  end

  before_each(function()
    gan.device(util.device)
    gan.seed(11)
  end)

  it("Conv2d computes the definition (stride, padding)", function()
    local m = nn.Conv2d(2, 3, 3, {stride = 2, padding = 1})
    local x = gan.randn(2, 2, 5, 4)
    local y = m:forward(x)
    assert.same({2, 3, 3, 2}, y:shape())
    m.bias:copy(gan.tensor{0.5, -1, 0.25})
    y = m:forward(x)
    local X, Wt, Bt, Y = x:totable(), m.weight:totable(), m.bias:totable(), y:totable()
    for b = 1, 2 do
      for k = 1, 3 do
        for p = 1, 3 do
          for q = 1, 2 do
            local s = Bt[k]
            for c = 1, 2 do
              for r = 1, 3 do
                for t = 1, 3 do
                  local i, j = (p - 1) * 2 - 1 + r, (q - 1) * 2 - 1 + t
                  if i >= 1 and i <= 5 and j >= 1 and j <= 4 then
                    s = s + Wt[k][c][r][t] * X[b][c][i][j]
                  end
                end
              end
            end
            assert.near(s, Y[b][k][p][q], 1e-4)
          end
        end
      end
    end
  end)

  it("ConvTranspose2d doubles the side and is the adjoint of Conv2d", function()
    local up = nn.ConvTranspose2d(4, 3, 4, {stride = 2, padding = 1, bias = false})
    assert.same({4, 3, 4, 4}, up.weight:shape())       -- PyTorch's (in, out, kh, kw)
    local y = gan.randn(2, 4, 5, 5)
    local x = up:forward(y)
    assert.same({2, 3, 10, 10}, x:shape())
    local down = nn.Conv2d(3, 4, 4, {stride = 2, padding = 1, bias = false})
    down.weight:copy(up.weight)
    local x2 = gan.randn(2, 3, 10, 10)
    assert.near(dot(down:forward(x2), y), dot(x2, x), 1e-3)
    local op = nn.ConvTranspose2d(4, 3, 3, {stride = 2, padding = 1, output_padding = 1})
    assert.same({2, 3, 10, 10}, op:forward(y):shape())
  end)

  describe("pass finite-difference gradient checks:", function()
    it("Conv2d", function()
      gradcheck(nn.Conv2d(2, 3, 3, {stride = 2, padding = 1}), gan.randn(2, 2, 5, 5))
      gradcheck(nn.Conv2d(3, 2, 4, {bias = false}), gan.randn(2, 3, 4, 4))
    end)
    it("ConvTranspose2d", function()
      gradcheck(nn.ConvTranspose2d(3, 2, 4, {stride = 2, padding = 1}), gan.randn(2, 3, 3, 3))
      gradcheck(nn.ConvTranspose2d(4, 2, 4, {bias = false}), gan.randn(2, 4, 1, 1))
    end)
    it("BatchNorm2d", function()
      local m = nn.BatchNorm2d(3)
      m.beta:normal(0, 0.5)
      gradcheck(m, gan.randn(4, 3, 3, 3), 2e-2)
    end)
    it("Reshape and Flatten", function()
      gradcheck(nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Reshape(3, 1, 1),
                              nn.ConvTranspose2d(3, 2, 2)), gan.randn(2, 3, 2, 2))
    end)
    it("a DCGAN-shaped G and D in a row", function()
      -- smooth activations: a ReLU kink within a step of 0 would spoil the
      -- differences (ReLU's own gradient is checked in nn_spec)
      local G = nn.Sequential(nn.Reshape(4, 1, 1), nn.ConvTranspose2d(4, 6, 4, {bias = false}),
                              nn.BatchNorm2d(6), nn.Tanh(),
                              nn.ConvTranspose2d(6, 3, 4, {stride = 2, padding = 1}), nn.Tanh(),
                              nn.Conv2d(3, 4, 4, {stride = 2, padding = 1}), nn.Sigmoid(),
                              nn.Conv2d(4, 1, 4), nn.Flatten())
      -- weights of DCGAN's scale (0.02) would make any step a large one
      for _, p in ipairs(G:parameters()) do
        if p.name:find("weight") then p.value:normal(0, 0.3) end
      end
      gradcheck(G, gan.randn(3, 4), 2e-2, 3e-3)
    end)
  end)

  it("accumulate parameter gradients; backward_input leaves them alone", function()
    local m = nn.Sequential(nn.Conv2d(2, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                            nn.ConvTranspose2d(4, 2, 4, {stride = 2, padding = 1}))
    local x = gan.randn(3, 2, 4, 4)
    local g = gan.randn(m:forward(x):shape())
    m:zero_grad()
    local gi = m:backward_input(x, g):clone()
    for _, p in ipairs(m:parameters()) do assert.equal(0, p.grad:sum()) end
    assert.is_true(gan.max_abs_diff(gi, m:backward(x, g)) < 1e-5)
    local once = {}
    for i, p in ipairs(m:parameters()) do once[i] = p.grad:clone() end
    m:backward(x, g)
    for i, p in ipairs(m:parameters()) do
      assert.is_true(gan.max_abs_diff(p.grad, once[i]:clone():scale(2)) < 1e-4, p.name)
    end
  end)

  it("take their own grad_input as the gradient: a new buffer, not in place", function()
    for _, make in ipairs({function() return nn.Conv2d(3, 3, 3, {padding = 1}) end,
                           function() return nn.ConvTranspose2d(3, 3, 3, {padding = 1}) end}) do
      for _, method in ipairs({"backward", "backward_input"}) do
        local m, x = make(), gan.randn(2, 3, 5, 5)
        local g = gan.randn(m:forward(x):shape())
        local want = m[method](m, x, g):clone()
        local own = m.grad_input
        own:copy(g)
        local got = m[method](m, x, own)
        assert.are_not.equal(own, got, method)
        assert.equal(0, gan.max_abs_diff(g, own), method) -- g left as it was
        assert.equal(0, gan.max_abs_diff(want, got), tostring(m) .. " " .. method)
      end
    end
  end)

  it("BatchNorm2d has PyTorch's defaults and wants 4-d input", function()
    local bn = nn.BatchNorm2d(5)
    assert.equal(0.9, bn.momentum)
    assert.equal(1e-5, bn.eps)
    assert.equal(0, bn.beta:sum())
    assert.near(5, bn.gamma:sum(), 0.5)                   -- N(1, 0.02)
    assert.error_matches(function() bn:forward(gan.zeros(4, 5)) end, "must be 4%-d")
  end)

  it("initialise weights as DCGAN does: N(0, 0.02), biases 0", function()
    local m = nn.Conv2d(64, 64, 4)
    local n, s = m.weight:numel(), m.weight:sum()
    local ss = dot(m.weight, m.weight)
    assert.near(0, s / n, 0.002)
    assert.near(0.02, math.sqrt(ss / n), 0.002)
    assert.equal(0, m.bias:sum())
  end)

  it("describe themselves so that nn[name](args) rebuilds them", function()
    local mods = {nn.Conv2d(3, 8, 4, {stride = 2, padding = 1, bias = false}),
                  nn.ConvTranspose2d(8, 3, {3, 5}, {stride = 2, padding = 1, output_padding = 1}),
                  nn.BatchNorm2d(8, {momentum = 0.8}), nn.Reshape(4, 2, 2), nn.Flatten(),
                  gan.augment.Augment{flip = true, translate = 0.125}}
    for _, m in ipairs(mods) do
      local d = m:describe()
      assert.equal(m.name, d[1])
      local copy = nn[d[1]](table.unpack(d, 2))
      assert.same(d, copy:describe())
      assert.equal(tostring(m), tostring(copy))
      for i, p in ipairs(m:parameters()) do
        assert.same(p.value:shape(), copy:parameters()[i].value:shape())
      end
    end
  end)

  it("Reshape and Flatten are views and name bad shapes", function()
    local x = gan.randn(2, 3, 4, 4)
    local f = nn.Flatten()
    local y = f:forward(x)
    assert.same({2, 48}, y:shape())
    assert.equal(y, f:forward(x))                        -- the same view again
    assert.same({2, 3, 4, 4}, f:backward(x, gan.ones(2, 48)):shape())
    assert.same({2, 12, 2, 2}, nn.Reshape(12, 2, 2):forward(x):shape())
    assert.error_matches(function() nn.Reshape(5, 5):forward(x) end,
      "Reshape: cannot view 2x3x4x4 as 2x5x5")
  end)

  it("name the fault: shapes, channels, the failing child", function()
    assert.error_matches(function() nn.Conv2d(3, 4, 3):forward(gan.zeros(2, 3)) end,
      "Conv2d: input must be 4%-d")
    local m = nn.Sequential(nn.Conv2d(3, 4, 4, {stride = 2, padding = 1}), nn.Conv2d(3, 1, 4))
    local ok, err = pcall(m.forward, m, gan.zeros(2, 3, 8, 8))
    assert.is_false(ok)
    assert.truthy(err:find("in module 2 (Conv2d) of Sequential: conv2d: input is 2x4x4x4 but "
                           .. "weight is 1x3x4x4", 1, true), err)
    assert.error_matches(function() nn.Conv2d(3, 4, 5):forward(gan.zeros(1, 3, 2, 2)) end,
      "smaller than the 5x5 kernel")
    assert.error_matches(function() nn.Conv2d(0, 4, 3) end, "input channels")
    assert.error_matches(function() nn.ConvTranspose2d(2, 2, 3, {stride = 2, output_padding = 2}) end,
      "output_padding")
  end)

  it("points a bad constructor argument at the caller's line", function()
    local dir = util.tmpdir()
    for _, case in ipairs{
      {"nn.BatchNorm2d(0)", "bad argument #1 to 'BatchNorm2d' %(positive integer expected%)"},
      {"nn.BatchNorm2d(4, {momentum = 2})", "'BatchNorm2d' %(option 'momentum'"},
      {"nn.BatchNorm2d(4, {gamma_std = 'x'})", "'BatchNorm2d' %(option 'gamma_std'"},
      {"nn.BatchNorm2d(4, 3)", "'BatchNorm2d' %(options table expected, got number%)"},
      {"nn.BatchNorm(4, {eps = 0})", "'BatchNorm' %(option 'eps'"},
      {"nn.Conv2d(0, 4, 3)", "'Conv2d' %(input channels"},
      {"nn.Conv2d(3, 4, 3, {padding = -1})", "'Conv2d' %(padding"},
      {"nn.ConvTranspose2d(2, 2, 3, {stride = 2, output_padding = 2})",
       "'ConvTranspose2d' %(output_padding"},
      {"nn.Reshape(4, 0)", "bad argument #2 to 'Reshape' %(dimension"},
      {"nn.Augment{translate = 2}", "bad option 'translate' to 'Augment'"},
      {"nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 0))", "bad argument #2 to 'Linear'"},
    } do
      local path = dir .. "/t.lua"
      -- at the top level, and one function deep: the constructor's line
      util.write(path, "local nn = gan.nn\n" .. case[1] .. "\n")
      local code, _, err = util.run({path})
      assert.equal(1, code, err)
      assert.truthy(err:find("^gan: " .. path:gsub("%p", "%%%0") .. ":2: "), err)
      assert.truthy(err:find(case[2]), err)
      util.write(path, "local nn = gan.nn\nlocal function f()\n  " .. case[1] .. "\nend\nf()\n")
      code, _, err = util.run({path})
      assert.equal(1, code, err)
      assert.truthy(err:find("^gan: " .. path:gsub("%p", "%%%0") .. ":3: "), err)
    end
    -- under pcall (a C caller) no position at all, and never one of gan's files
    local ok, err = pcall(nn.Reshape, 0)
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'Reshape' (dimension: positive integer expected, got 0)", err)
    -- a checkpoint whose model cannot be rebuilt: the reason, with no position
    local m = nn.Conv2d(3, 4, 3, {device = "cpu"})
    m.describe = function() return {"Conv2d", 0, 4, 3} end
    gan.save(dir .. "/bad.ckpt", {models = {G = nn.Sequential(m)}})
    ok, err = pcall(gan.load, dir .. "/bad.ckpt")
    assert.is_false(ok)
    assert.equal(("checkpoint '%s/bad.ckpt': model G cannot be rebuilt: bad argument #1 to "
                  .. "'Conv2d' (input channels: positive integer expected, got 0)"):format(dir), err)
    util.rmdir(dir)
  end)
end)

describe("a DCGAN training step", function()
  -- the D step and the G step of scripts/strawberry_dcgan.lua on a small
  -- model, in the gan program (which counts the Lua state's allocations);
  -- no tensor and no Lua object over 20 steps
  local step_script = [[
local nn = gan.nn
gan.device(...)
local G = nn.Sequential(nn.Reshape(8, 1, 1),
  nn.Sequential(nn.ConvTranspose2d(8, 8, 4, {bias = false}), nn.BatchNorm2d(8), nn.ReLU()),
  nn.ConvTranspose2d(8, 3, 4, {stride = 2, padding = 1, bias = false}), nn.Tanh())
local D = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 4, {stride = 2, padding = 1}),
                                      nn.LeakyReLU(0.2)),
  nn.Sequential(nn.Conv2d(8, 16, 4, {stride = 2, padding = 1, bias = false}),
                nn.BatchNorm2d(16), nn.LeakyReLU(0.2)),
  nn.Conv2d(16, 1, 2, {bias = false}), nn.Flatten())
local bce, prob, B = nn.BCEWithLogits(), nn.Sigmoid(), 6
local go, dop = gan.optim.Adam(G:parameters()), gan.optim.Adam(D:parameters())
local real, ones, zeros, z = gan.rand(B, 3, 8, 8), gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, 8)
local ar, af = gan.augment.Augment{translate = 0.125}, gan.augment.Augment{translate = 0.125}
local function step()
  D:zero_grad()
  gan.augment.flip(real)
  local xr = ar:forward(real)
  local pr = D:forward(xr)
  bce:forward(pr, ones)
  prob:forward(pr):mean()
  D:backward(xr, bce:backward(), false)
  z:normal()
  local fake = G:forward(z)
  local xf = af:forward(fake)
  bce:forward(D:forward(xf), zeros)
  D:backward(xf, bce:backward(), false)
  dop:step()
  G:zero_grad()
  xf = af:forward(fake)
  bce:forward(D:forward(xf), ones)
  G:backward(z, af:backward(fake, D:backward_input(xf, bce:backward())), false)
  go:step()
end
for _ = 1, 3 do step() end
local tensors, objects = gan.memory().allocs, gan.lua_allocs()
for _ = 1, 20 do step() end
print(gan.lua_allocs() - objects, gan.memory().allocs - tensors)
]]

  it("allocates no tensor and no Lua object after the first", function()
    if not conv_available() then pending("no convolutions on " .. util.device) return end
    local dir = util.tmpdir()
    util.write(dir .. "/step.lua", step_script)
    local code, out, err = util.run({dir .. "/step.lua", util.device})
    util.rmdir(dir)
    assert.equal(0, code, err)
    assert.equal("0\t0\n", out)
  end)
end)

describe("gan.augment", function()
  before_each(function()
    gan.device(util.device)
    gan.seed(5)
  end)

  it("flip mirrors some images left-right, in place, and leaves the others", function()
    local x = gan.randn(16, 3, 4, 5)
    local before = x:totable()
    gan.augment.flip(x)
    local after, flipped = x:totable(), 0
    for b = 1, 16 do
      local same, mirrored = true, true
      for c = 1, 3 do
        for i = 1, 4 do
          for j = 1, 5 do
            if after[b][c][i][j] ~= before[b][c][i][j] then same = false end
            if after[b][c][i][j] ~= before[b][c][i][6 - j] then mirrored = false end
          end
        end
      end
      assert.is_true(same or mirrored)
      if mirrored and not same then flipped = flipped + 1 end
    end
    assert.is_true(flipped > 2 and flipped < 14, "flipped " .. flipped)
  end)

  it("Augment shifts by up to translate * size with zeros, and its backward is the adjoint", function()
    local T = gan.augment.Augment{translate = 0.25, flip = true}
    local x = gan.ones(8, 2, 8, 8)
    local y = T:forward(x)
    local zeros = 0
    for _, v in ipairs(flat(y)) do if v == 0 then zeros = zeros + 1 end end
    assert.is_true(zeros > 0 and zeros < 8 * 2 * 64 * 0.5, zeros)  -- shifts of at most 2 of 8
    x = gan.randn(8, 2, 8, 8)
    y = T:forward(x)
    local g = gan.randn(8, 2, 8, 8)
    assert.near(dot(y, g), dot(x, T:backward(x, g)), 1e-3)
    T:evaluate()
    assert.equal(x, T:forward(x))                         -- the identity in evaluation
    assert.error_matches(function() gan.augment.Augment{translate = 2} end, "translate")
  end)
end)

describe("scripts/strawberry_dcgan.lua", function()
  local script = util.root .. "/scripts/strawberry_dcgan.lua"

  -- 48 generated 16x16 PNGs: a red disc with a green top on a light background
  local function dataset(dir)
    for i = 1, 48 do
      local cx, cy, r = 6 + i % 5, 8 + i % 3, 4 + i % 3
      png.write(("%s/img%03d.png"):format(dir, i), 16, 16, 3, 8, function(x, y)
        local d2 = (x - cx) ^ 2 + (y - cy) ^ 2
        if d2 < r * r then return y < cy - r // 2 and {40, 160, 40} or {200, 30, 40} end
        return {230, 220, 200 + i % 40}
      end)
    end
    return dir
  end

  it("trains 2 epochs at 16x16 and writes its samples, loss.csv and a checkpoint", function()
    local ok = conv_available()
    if not ok then pending("no convolutions on " .. util.device) return end
    local out, tmp = util.tmpdir(), util.tmpdir()
    local code, _, err = util.run({script, "--data", dataset(tmp), "--size", "16", "--width", "4",
                                   "--batch", "16", "--epochs", "2", "--sample-every", "1",
                                   "--samples", "9", "--translate", "0.125",
                                   "--out", out, "--device", util.device})
    assert.equal(0, code, err)
    for _, e in ipairs{"0000", "0001", "0002"} do
      local p = util.read(out .. "/samples/epoch_" .. e .. ".png")
      assert.truthy(p and p:sub(2, 4) == "PNG", "epoch " .. e)
      local w, h = string.unpack(">I4 I4", p, 17)
      assert.same({3 * 16 + 2 * 2, 3 * 16 + 2 * 2}, {w, h})   -- 9 samples: 3 x 3
    end
    local csv = util.read(out .. "/loss.csv")
    assert.truthy(csv:find("^epoch,step,d_loss,g_loss,d_real,d_fake\n1,3,.*\n2,6,"), csv)
    assert.falsy(csv:find("nan"))
    assert.truthy(err:find("epoch 2/2 |##########| 3/3", 1, true), err)
    local ck = gan.load(out .. "/checkpoints/last.ckpt")
    assert.equal(2, ck.epoch)
    assert.same({9, 3, 16, 16}, ck:sample():shape())
    util.rmdir(out)
    util.rmdir(tmp)
  end)

  it("rejects a size it has no blocks for", function()
    local code, _, err = util.run({script, "--size", "48"})
    assert.equal(2, code)
    assert.truthy(err:find("--size must be one of 16, 32, 64, 128", 1, true), err)
  end)
end)
