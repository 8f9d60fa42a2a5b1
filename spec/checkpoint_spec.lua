-- Checkpoints through the Lua API: the metadata serializer, model
-- descriptions, gan.save / gan.load / restore, and every way a file can be
-- wrong (truncated, corrupted, another version, another model), none of
-- which may change a live tensor.  The run-level checks (exact resume,
-- Ctrl-C, scripts/sample.lua) are in run_spec.lua.
local gan = require "gan"
local nn, ckpt = gan.nn, gan.checkpoint
local util = require "support.util"

-- A small G with every kind of state: parameters, BatchNorm buffers.
local function make_G(hidden)
  return nn.Sequential(
    nn.Sequential(nn.Linear(4, hidden), nn.LeakyReLU(0.2), nn.BatchNorm(hidden, {momentum = 0.8})),
    nn.Linear(hidden, 12), nn.Sigmoid())                 -- 12 = 3 x 2 x 2 images
end
local function make_D()
  return nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 1),
                       nn.Tanh(), nn.Identity(), nn.Linear(1, 1, {bias = false}))
end

-- Trains a few steps so that moments, step counts and running stats move.
local function trained(hidden)
  local G, D = make_G(hidden or 8), make_D()
  local g_opt = gan.optim.Adam(G:parameters(), {lr = 0.01})
  local d_opt = gan.optim.Adam(D:parameters(), {lr = 0.01})
  local z = gan.randn(5, 4)
  for _ = 1, 3 do
    G:zero_grad()
    local y = G:forward(z)
    G:backward(z, gan.ones(5, 12), false)
    g_opt:step()
    D:zero_grad()
    D:forward(y)
    D:backward(y, gan.ones(5, 1), false)
    d_opt:step()
  end
  return {models = {G = G, D = D}, optims = {G = g_opt, D = d_opt}, noise = gan.randn(6, 4),
          epoch = 7, step = 21, opts = {lr = 0.01, name = "x", flag = true}, range = "0,1",
          extra = {times = {1.5, 2.25}}}
end

local function all_tensors(state)
  local list = {}
  for _, name in ipairs{"G", "D"} do
    local m = state.models[name]
    for _, p in ipairs(m:parameters()) do list[#list + 1] = p.value end
    for _, b in ipairs(m.buffers and m:buffers() or {}) do list[#list + 1] = b.value end
    local o = state.optims and state.optims[name]
    if o then
      for i = 1, #o.m do list[#list + 1] = o.m[i]; list[#list + 1] = o.v[i] end
    end
  end
  return list
end

local function snapshot(state)
  local s = {}
  for i, t in ipairs(all_tensors(state)) do s[i] = t:clone() end
  return s
end

local function unchanged(state, snap)
  for i, t in ipairs(all_tensors(state)) do
    if not gan.equal(t, snap[i]) then return false end
  end
  return true
end

local function read(path) return util.read(path) end
local function write(path, s) util.write(path, s) end

describe("checkpoint metadata (Lua source)", function()
  it("round-trips numbers exactly, strings, booleans and nested tables", function()
    local v = {1, 2.0, -0.0, 0.1, 1e300, -2.5e-310, math.maxinteger, math.mininteger,
               1 / 0, -1 / 0, "a\nb\"c\\\0\255", true, false, {x = {y = {}}},
               ["key with space"] = 3, ["end"] = 4, [100] = "hundred", [-1] = 0.5}
    local text = ckpt.serialize(v)
    local back = assert(ckpt.deserialize(text, "test"))
    for k, x in pairs(v) do
      assert.equal(math.type(x), math.type(back[k]), tostring(k))
      if type(x) ~= "table" then assert.equal(x, back[k], tostring(k)) end
    end
    assert.equal(1 / back[3], -1 / 0)                      -- -0.0 kept its sign
    assert.same(v[14], back[14])
    local nan = assert(ckpt.deserialize(ckpt.serialize(0 / 0), "nan"))
    assert.is_true(nan ~= nan)
  end)

  it("refuses anything that could run code, and tables that contain themselves", function()
    for _, bad in ipairs{'os.exit(3)', '("x"):rep(10)', "'x'", '[[x]]', 'x:y()',
                         '{a = 1} -- (', 'print "x"'} do
      local v, err = ckpt.deserialize(bad, "bad")
      assert.is_nil(v, bad)
      assert.truthy(err, bad)
    end
    -- a parenthesis inside a string is fine
    assert.equal("f(x)", ckpt.deserialize('"f(x)"', "ok"))
    local t = {}
    t.self = t
    assert.has_error(function() ckpt.serialize(t) end)
    assert.has_error(function() ckpt.serialize({f = print}) end)
  end)
end)

describe("model descriptions", function()
  before_each(function() gan.seed(11) end)

  it("rebuild every gan.nn module with the same structure", function()
    local G, D = make_G(8), make_D()
    for _, m in ipairs{G, D} do
      local d = ckpt.describe(m)
      local again = ckpt.build(d)
      assert.equal(tostring(m), tostring(again))
      assert.same(d, ckpt.describe(again))
      local p, q = m:parameters(), again:parameters()
      assert.equal(#p, #q)
      for i = 1, #p do assert.same(p[i].value:shape(), q[i].value:shape()) end
    end
    assert.same({"Linear", 1, 1, {bias = false}}, ckpt.describe(D.modules[7]))
    assert.same({"BatchNorm", 8, {momentum = 0.8, eps = 1e-3}}, ckpt.describe(G.modules[1].modules[3]))
  end)

  it("use a module's own describe() and name what cannot be described", function()
    local custom = setmetatable({name = "Custom", forward = function(_, x) return x end},
                                {__index = nn.Module})
    assert.has_error(function() ckpt.describe(custom) end)
    local ok, err = pcall(ckpt.describe, nn.Sequential(nn.ReLU(), custom))
    assert.is_false(ok)
    assert.truthy(err:find("module 2 of Sequential", 1, true), err)
    custom.describe = function() return {"Linear", 2, 3} end
    assert.same({"Linear", 2, 3}, ckpt.describe(custom))
    assert.equal("nn.Linear(2 -> 3)", tostring(ckpt.build(ckpt.describe(custom))))
  end)
end)

describe("gan.save and gan.load", function()
  local dir
  before_each(function()
    gan.device(util.device)
    gan.seed(5)
    dir = util.tmpdir()
  end)
  after_each(function() util.rmdir(dir) end)

  it("round-trip parameters, running statistics, optimizer state, noise and metadata", function()
    local state = trained()
    local path = gan.save(dir .. "/a.ckpt", state)
    assert.equal(dir .. "/a.ckpt", path)
    local rng = gan.rng_state()
    local ck = gan.load(path)
    assert.equal(rng, gan.rng_state())                   -- loading draws nothing
    assert.equal(7, ck.epoch)
    assert.equal(21, ck.step)
    assert.same({lr = 0.01, name = "x", flag = true}, ck.opts)
    assert.same({times = {1.5, 2.25}}, ck.extra)
    assert.equal("0,1", ck.range)
    assert.equal(rng, ck.rng)
    assert.is_true(gan.equal(state.noise, ck.noise))
    for _, name in ipairs{"G", "D"} do
      local m, l = state.models[name], ck[name]
      assert.equal(l, ck.models[name])
      assert.is_false(l.training)                        -- ready to sample
      for i, p in ipairs(m:parameters()) do
        assert.is_true(gan.equal(p.value, l:parameters()[i].value), name .. " " .. p.name)
      end
      for i, b in ipairs(m.buffers and m:buffers() or {}) do
        assert.is_true(gan.equal(b.value, l:buffers()[i].value), name .. " " .. b.name)
      end
      local o, lo = state.optims[name], ck.optims[name]
      assert.equal(o.t, lo.t)
      assert.equal(3, lo.t)
      for i = 1, #o.m do
        assert.is_true(gan.equal(o.m[i], lo.m[i]))
        assert.is_true(gan.equal(o.v[i], lo.v[i]))
      end
    end
    -- BatchNorm's running statistics did move, so the check above means something
    local rm = state.models.G.modules[1].modules[3].running_mean
    assert.is_false(gan.equal(rm, gan.zeros(8)))
    -- the loaded G samples in evaluation mode, as the live one does
    state.models.G:evaluate()
    assert.is_true(gan.equal(state.models.G:forward(state.noise), ck:sample()))
    assert.same({3, 12}, ck:sample(3):shape())
    assert.error_matches(function() ck:sample(0) end,
      "bad argument #1 to 'sample' %(a number of samples %(1 or more%) or a latent tensor")
    assert.error_matches(function() ck:save_grid("g.png", "x") end, "bad argument #2 to 'save_grid'")
    ck:save_grid(dir .. "/grid.png")
    assert.equal("PNG", read(dir .. "/grid.png"):sub(2, 4))
  end)

  it("restore puts a checkpoint back into live models and optimizers", function()
    local state = trained()
    gan.save(dir .. "/a.ckpt", state)
    local snap = snapshot(state)
    local other = trained()                              -- same shapes, other values
    assert.is_false(unchanged(other, snap))
    local meta = ckpt.restore(dir .. "/a.ckpt", other)
    assert.is_true(unchanged(other, snap))
    assert.is_true(gan.equal(other.noise, state.noise))
    assert.equal(3, other.optims.G.t)
    assert.equal(21, meta.step)
  end)

  it("refuses a checkpoint of a different model, naming the first difference, changing nothing", function()
    gan.save(dir .. "/a.ckpt", trained(8))
    local other = trained(16)
    local snap = snapshot(other)
    local ok, err = pcall(ckpt.restore, dir .. "/a.ckpt", other)
    assert.is_false(ok)
    assert.truthy(err:find(dir .. "/a.ckpt", 1, true), err)
    assert.truthy(err:find("parameter 1.1.weight of model G", 1, true), err)
    assert.truthy(err:find("8x4 in the file but 16x4 here", 1, true), err)
    assert.is_true(unchanged(other, snap))
    -- a model with an extra layer: named too
    local bigger = trained(8)
    bigger.models.D:add(nn.Linear(1, 1))
    ok, err = pcall(ckpt.restore, dir .. "/a.ckpt", {models = bigger.models})
    assert.is_false(ok)
    assert.truthy(err:find("has no parameter 8.weight of model D", 1, true), err)
    -- one layer fewer
    local smaller = trained(8)
    table.remove(smaller.models.D.modules)
    ok, err = pcall(ckpt.restore, dir .. "/a.ckpt", {models = smaller.models})
    assert.is_false(ok)
    assert.truthy(err:find("model D has no parameter 7.weight", 1, true), err)
  end)

  it("refuses truncated, corrupted and other-version files with the file's name", function()
    local state = trained()
    local path = dir .. "/a.ckpt"
    gan.save(path, state)
    local good = read(path)
    local snap = snapshot(state)
    local function refused(bytes, pattern)
      write(dir .. "/bad.ckpt", bytes)
      local ok, err = pcall(ckpt.restore, dir .. "/bad.ckpt", state)
      assert.is_false(ok, pattern)
      assert.truthy(err:find(dir .. "/bad.ckpt", 1, true), err)
      assert.truthy(err:find(pattern, 1, true), err)
      assert.is_true(unchanged(state, snap))
      ok, err = pcall(gan.load, dir .. "/bad.ckpt")
      assert.is_false(ok)
      assert.truthy(err:find(pattern, 1, true), err)
    end
    refused(good:sub(1, 1000), "truncated")
    refused(good:sub(1, #good - 1), "truncated")
    refused(good:sub(1, 12), "not a gan checkpoint")
    local mid = #good // 2                               -- inside a payload
    refused(good:sub(1, mid - 1) .. string.char(good:byte(mid) ~ 1) .. good:sub(mid + 1),
            "does not match")
    refused(good:sub(1, 8) .. "\7" .. good:sub(10), "version 7")
    refused("hello" .. good:sub(6), "not a gan checkpoint")
    refused(good .. "x", "after its end")
    local ok, err = pcall(gan.load, dir .. "/none.ckpt")
    assert.is_false(ok)
    assert.truthy(err:find("none.ckpt", 1, true), err)
  end)

  it("keeps the previous file when a save fails", function()
    local state = trained()
    local path = dir .. "/a.ckpt"
    gan.save(path, state)
    local before = read(path)
    local ok, err = pcall(gan.save, dir .. "/missing/b.ckpt", state)
    assert.is_false(ok)
    assert.truthy(err:find(dir .. "/missing/b.ckpt", 1, true), err)
    -- a freed tensor: refused before the file is opened
    local broken = trained()
    broken.noise:free()
    ok = pcall(gan.save, path, broken)
    assert.is_false(ok)
    assert.equal(before, read(path))
    local p = io.popen("ls -A " .. util.quote(dir))
    local files = p:read("a")
    p:close()
    assert.equal("a.ckpt\n", files)                      -- no temporary file left
  end)
end)
