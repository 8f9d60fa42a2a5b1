-- Values read without waiting for the GPU: t:mean(out), t:sum(out), a
-- criterion's loss into a tensor, gan.reader, and the training loop that
-- reads a step's values one step late (gan/train.lua).
--
-- On the CPU a reader has its values at once.  GAN_TEST_DEFER_READS=1 makes
-- the CPU's readers say "not ready" until waited for, as a GPU's do while
-- its queue runs, so the loop's deferred path is tested here without a GPU.
local gan = require "gan"
local util = require "support.util"
local R = require "support.run"

local dev = util.device

describe("t:mean(out) and t:sum(out)", function()
  it("write the mean and the sum into a 1-element tensor, on the device", function()
    gan.seed(5)
    local x = gan.randn(37, 11, dev)
    local out = gan.empty(1, dev)
    assert.equal(out, x:mean(out))
    assert.near(x:mean(), out:item(), 1e-6 * math.abs(x:mean()) + 1e-7)
    assert.equal(out, x:sum(out))
    assert.near(x:sum(), out:item(), 1e-6 * math.abs(x:sum()) + 1e-6)
    local ok, err = pcall(function() return x:mean(gan.empty(2, dev)) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("must have 1 element", 1, true), err)
  end)
end)

describe("a criterion's forward(pred, target, out)", function()
  it("writes the loss into out and returns it, equal to the number", function()
    gan.seed(6)
    local p, y = gan.rand(10, 1, dev), gan.ones(10, 1, dev)
    local bce, out = gan.nn.BCE(), gan.zeros(1, dev)
    local number = bce:forward(p, y)
    assert.equal(out, bce:forward(p, y, out))
    assert.equal(number, out:item())
    -- the backward still follows that forward
    local g = bce:backward():to("cpu"):totable()
    assert.near(-1 / (10 * p:to("cpu"):totable()[1][1]), g[1][1], 1e-5)
  end)
end)

describe("gan.reader", function()
  it("returns numbers, nils and 1-element tensors in order, the tensors as numbers", function()
    local r = gan.reader()
    local a, b = gan.tensor({2.5}, dev), gan.tensor({{-0.125}}, dev)
    assert.equal(r, r:start(1, a, nil, b, 7))
    assert.same({1, 2.5, nil, -0.125, 7, n = 5}, table.pack(r:values()))
    assert.equal("integer", math.type((r:values())))    -- numbers come back as they went
    assert.equal(5, select("#", r:values()))      -- again: the same values
    assert.is_true(r:ready())
    assert.equal(0, select("#", r:start():values()))
  end)

  it("takes each tensor's value when the read starts", function()
    local r, t = gan.reader(), gan.tensor({1}, dev)
    r:start(t)
    t:fill(2)
    assert.equal(1, (r:values()))
    r:start(t):start(t:fill(3))                  -- a second start replaces the first
    assert.equal(3, (r:values()))
  end)

  it("refuses what it cannot read, naming the value", function()
    local r = gan.reader()
    local ok, err = pcall(r.start, r, 1, gan.zeros(3, 1, dev))
    assert.is_false(ok)
    assert.truthy(err:find("value #2 is a tensor of shape 3x1 (a number or a 1-element "
                           .. "tensor expected)", 1, true), err)
    ok, err = pcall(r.start, r, "x")
    assert.is_false(ok)
    assert.truthy(err:find("value #1 is a string", 1, true), err)
    local t = gan.zeros(1, dev)
    t:free()
    ok, err = pcall(r.start, r, t)
    assert.is_false(ok)
    assert.truthy(err:find("value #1 is a freed tensor", 1, true), err)
    local many = {}
    for i = 1, 17 do many[i] = i end
    ok, err = pcall(r.start, r, table.unpack(many))
    assert.is_false(ok)
    assert.truthy(err:find("17 values (at most 16)", 1, true), err)
    -- after a refused start the reader holds nothing, and works again
    assert.equal(0, select("#", r:values()))
    assert.equal(4, (r:start(gan.tensor({4}, dev)):values()))
  end)

  it("holds no values after it is closed", function()
    local r = gan.reader()
    r:start(gan.tensor({9}, dev))
    assert.equal(9, (r:values()))
    do local _ <close> = r end
    assert.equal(0, select("#", r:values()))
  end)

  it("is not ready before its values are taken when reads are deferred", function()
    local code, out, err = util.run({"-e", [[
      local r = gan.reader()
      r:start(gan.tensor{9})
      local before = r:ready()
      print(before, r:values(), r:ready())]]}, nil, {GAN_TEST_DEFER_READS = "1"})
    assert.equal(0, code, err)
    assert.equal("false\t9.0\ttrue\n", out)
  end)
end)

describe("a training step's values read one step late", function()
  local tmp, data, script
  setup(function()
    tmp = util.tmpdir()
    data = R.dataset(tmp)
    script = util.root .. "/scripts/strawberry.lua"
  end)
  teardown(function() util.rmdir(tmp) end)

  -- a copy of the script whose step returns numbers (each read waits)
  local function numbers_script()
    local text = util.read(script)
    local old = "    return d_loss, g_step(), d_real, d_fake\n"
    local a, b = text:find(old, 1, true)
    assert.truthy(a, "the schedule's return moved")
    local path = tmp .. "/numbers.lua"
    util.write(path, text:sub(1, a - 1)
               .. "    local g = g_step()\n"
               .. "    return d_loss:item(), g:item(), d_real:item(), d_fake:item()\n"
               .. text:sub(b + 1))
    return path
  end

  it("log what a step of numbers logs, deferred or not, bit for bit", function()
    local runs = {}
    for i, case in ipairs{{script}, {script, {GAN_TEST_DEFER_READS = "1"}},
                          {numbers_script()}} do
      local out = util.tmpdir()
      local code, _, err = util.run(R.tiny(case[1], data, out, {"--epochs", "3"}), nil, case[2])
      assert.equal(0, code, err)
      runs[i] = {csv = util.read(out .. "/loss.csv"),
                 ck = gan.load(out .. "/checkpoints/last.ckpt")}
      util.rmdir(out)
    end
    local rows = select(2, runs[1].csv:gsub("\n", ""))
    assert.equal(4, rows)                         -- the header and 3 epochs
    assert.equal(runs[3].csv, runs[1].csv)
    assert.equal(runs[3].csv, runs[2].csv)
    for i = 2, 3 do
      assert.equal(12, runs[i].ck.step)
      assert.is_true(gan.equal(runs[1].ck.G:parameters()[1].value,
                               runs[i].ck.G:parameters()[1].value))
    end
  end)

  it("stop on Ctrl-C with every step's values counted, and resume exactly", function()
    local env = {GAN_TEST_DEFER_READS = "1"}
    local out, straight = util.tmpdir(), util.tmpdir()
    local h = R.background(R.tiny(script, data, out, {"--epochs", "100000",
                                                      "--sample-every", "100000"}), env)
    finally(function() h:stop() end)
    h:wait_for("epoch 2/")
    h:signal("INT")
    local code, err = h:finish()
    assert.equal(130, code, err)
    local epoch, step = err:match("interrupted at epoch (%d+), step (%d+): checkpoint")
    assert.truthy(epoch, err)
    local ck = gan.load(out .. "/checkpoints/last.ckpt")
    assert.equal(tonumber(step), ck.step)
    local target = tostring(tonumber(epoch) + 1)
    local c2, _, err2 = util.run({script, "--resume", out, "--epochs", target}, nil, env)
    assert.equal(0, c2, err2)
    local c3, _, err3 = util.run(R.tiny(script, data, straight, {"--epochs", target,
                                                                 "--sample-every", "100000"}))
    assert.equal(0, c3, err3)
    assert.equal(util.read(straight .. "/loss.csv"), util.read(out .. "/loss.csv"))
    util.rmdir(out)
    util.rmdir(straight)
  end)

  -- a minimal loop whose values are 1-element tensors: NaN at step 'nan',
  -- or a value the reader refuses
  local guard = [[
local gan = require "gan"
local train = gan.train
train.loop(function(r)
  local n, at = 0, r.opts.nan
  local d, g, two = gan.empty(1), gan.empty(1), gan.zeros(2, 1)
  return {step = function()
    n = n + 1
    d:fill(n == at and 0 / 0 or 0.7)
    g:fill(0.7)
    if r.opts.bad then return d, two end
    if r.opts.returns == 1 then return d end
    if r.opts.returns == 2 then return d, g end
    return d, g, 0.5, 0.5
  end}
end)
local run = train.start({{"out", "", "run folder"}, {"epochs", 3, ""}, {"sample_every", 1, ""},
                         {"checkpoint_minutes", 0, ""}, {"seed", 1, ""}, {"nan", 0, ""}, {"bad", false, ""},
                         {"returns", 4, ""}}, arg, "guard.lua")
local G = gan.nn.Sequential(gan.nn.Linear(2, 12), gan.nn.Sigmoid())  -- 3x2x2 images
run:fit{models = {G = G}, loader = gan.data.loader(gan.rand(8, 3, 2, 2), 2),
        noise = gan.randn(4, 2)}
]]

  it("name the step of a NaN even when it is read a step later", function()
    local path = tmp .. "/guard.lua"
    util.write(path, guard)
    -- step 7 is read during step 8; step 8, the last of epoch 2, after the loop
    for _, at in ipairs{7, 8} do
      local out = util.tmpdir()
      local code, _, err = util.run({path, "--out", out, "--nan", tostring(at)}, nil,
                                    {GAN_TEST_DEFER_READS = "1"})
      assert.equal(1, code, err)
      assert.truthy(err:find("D loss is NaN at epoch 2, step " .. at, 1, true), err)
      assert.truthy(err:find("the last good checkpoint is kept: " .. out
                             .. "/checkpoints/last.ckpt (epoch 1)", 1, true), err)
      assert.equal(1, gan.load(out .. "/checkpoints/last.ckpt").epoch)
      util.rmdir(out)
    end
  end)

  it("leave the cells of values the loop does not give empty, and need both losses", function()
    local path = tmp .. "/guard.lua"
    util.write(path, guard)
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--returns", "2", "--epochs", "1"})
    assert.equal(0, code, err)
    -- D(real) and D(fake) were never given: no mean, not a 0 that reads as a result
    assert.equal("epoch,step,d_loss,g_loss,d_real,d_fake\n1,4,0.7,0.7,,\n",
                 util.read(out .. "/loss.csv"))
    code, _, err = util.run({path, "--out", out, "--returns", "1"})
    assert.equal(1, code, err)
    assert.truthy(err:find("the loop's step returned no G loss (value #2)", 1, true), err)
    util.rmdir(out)
    util.rmdir(out .. ".1")
  end)

  it("refuse a value that is not a number or a 1-element tensor, saying where", function()
    local path = tmp .. "/guard.lua"
    util.write(path, guard)
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--bad"})
    assert.equal(1, code, err)
    assert.truthy(err:find("the loop's step: value #2 is a tensor of shape 2x1", 1, true), err)
    -- one line, with what is left to go on from, and no traceback of train.lua
    assert.truthy(err:find("; no checkpoint had been written yet", 1, true), err)
    assert.falsy(err:find("traceback", 1, true), err)
    util.rmdir(out)
  end)
end)
