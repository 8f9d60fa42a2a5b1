-- gan.nn modules, losses and Adam through the Lua API.
local gan = require "gan"
local nn = gan.nn
local util = require "support.util"

describe("gan.nn", function()
  before_each(function()
    gan.device(util.device)
    gan.seed(7)
  end)

  it("Linear computes x W^T + b", function()
    local l = nn.Linear(2, 3)
    l.weight:copy(gan.tensor{{1, 0}, {0, 1}, {1, 1}})
    l.bias:copy(gan.tensor{0.5, -0.5, 0})
    local y = l:forward(gan.tensor{{1, 2}})
    assert.same({{1.5, 1.5, 3}}, y:totable())
  end)

  it("Linear accumulates parameter gradients until zero_grad", function()
    local l = nn.Linear(3, 2)
    local x, g = gan.randn(4, 3), gan.randn(4, 2)
    l:zero_grad()
    l:forward(x)
    l:backward(x, g)
    local once = l.grad_weight:clone()
    l:backward(x, g)
    local twice = l.grad_weight:clone():add(once, -1)   -- twice - once == once
    assert.is_true(gan.max_abs_diff(twice, once) < 1e-5)
    l:zero_grad()
    assert.equal(0, l.grad_weight:sum())
  end)

  it("zero_grad puts its zeros off: gradients read as zero, and backward overwrites them",
     function()
    local x, g = gan.randn(4, 3), gan.randn(4, 2)
    -- the eager way, written out: zeros, then a backward that adds
    local eager = nn.Linear(3, 2)
    eager.grad_weight:zero(); eager.grad_bias:zero()
    eager:forward(x)
    eager:backward(x, g)
    local l = nn.Linear(3, 2)
    l.weight:copy(eager.weight); l.bias:copy(eager.bias)
    l:forward(x)
    l:backward(x, g); l:backward(x, g)   -- something to throw away
    l:zero_grad()
    -- a reader before any backward sees zeros: totable, a view, sum
    assert.same({{0, 0, 0}, {0, 0, 0}}, l.grad_weight:totable())
    l:backward(x, g); l:zero_grad()
    assert.same({{0, 0, 0}}, l.grad_weight:rows(2, 1):totable())
    local flat = l.grad_weight:view(6)           -- a view made before the mark
    l:backward(x, g); l:zero_grad()
    assert.same({0, 0, 0, 0, 0, 0}, flat:totable())
    assert.equal(0, l.grad_weight:sum())
    l:backward(x, g); l:zero_grad()
    assert.equal(0, l.grad_bias:sum())
    -- the backward after zero_grad: the eager gradients, bit for bit
    l:backward(x, g)
    assert.equal(0, gan.max_abs_diff(l.grad_weight, eager.grad_weight))
    assert.equal(0, gan.max_abs_diff(l.grad_bias, eager.grad_bias))
    -- and a second one adds
    l:backward(x, g)
    local twice = eager.grad_weight:clone():add(eager.grad_weight, 1)
    assert.is_true(gan.max_abs_diff(l.grad_weight, twice) < 1e-6)
  end)

  it("BatchNorm's zero_grad puts its zeros off too", function()
    local x, g = gan.randn(6, 4), gan.randn(6, 4)
    local eager = nn.BatchNorm(4)
    eager.grad_gamma:zero(); eager.grad_beta:zero()
    eager:forward(x)
    eager:backward(x, g)
    local b = nn.BatchNorm(4)
    b:forward(x)
    b:backward(x, g); b:backward(x, g)   -- something to throw away
    b:zero_grad()
    assert.same({0, 0, 0, 0}, b.grad_gamma:totable())   -- a reader sees zeros
    b:backward(x, g); b:zero_grad()
    b:backward(x, g)                    -- overwrites: the eager gradients, bit for bit
    assert.equal(0, gan.max_abs_diff(b.grad_gamma, eager.grad_gamma))
    assert.equal(0, gan.max_abs_diff(b.grad_beta, eager.grad_beta))
    b:backward(x, g)                    -- and a second one adds
    local twice = eager.grad_beta:clone():add(eager.grad_beta, 1)
    assert.is_true(gan.max_abs_diff(b.grad_beta, twice) < 1e-6)
    b:zero_grad()
    b:backward_input(x, g)              -- no parameter gradients: still zeros
    assert.equal(0, b.grad_beta:sum())
  end)

  it("Adam after zero_grad and no backward steps with zero gradients", function()
    local x, g = gan.randn(4, 3), gan.randn(4, 2)
    -- two layers from the same weights, one step each from a real gradient,
    -- then a second step after zeros: written by hand, or put off by zero_grad
    local function layer()
      local l = nn.Linear(3, 2)
      if gan.seed then gan.seed(11) end
      l.weight:uniform(-1, 1)
      local opt = gan.optim.Adam(l:parameters(), {lr = 0.1})
      l:forward(x); l:backward(x, g); opt:step()
      return l, opt
    end
    local a, aopt = layer()
    local b, bopt = layer()
    assert.equal(0, gan.max_abs_diff(a.weight, b.weight))
    a.grad_weight:zero(); a.grad_bias:zero()
    aopt:step()
    b:zero_grad()    -- the stale gradient stays in memory until a reader
    bopt:step()
    assert.equal(0, gan.max_abs_diff(a.weight, b.weight))
    assert.equal(0, gan.max_abs_diff(a.bias, b.bias))
  end)

  it("backward_input leaves parameter gradients alone", function()
    local m = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.BatchNorm(4), nn.Linear(4, 1))
    local x, g = gan.randn(5, 3), gan.randn(5, 1)
    m:zero_grad()
    m:forward(x)
    local gi = m:backward_input(x, g)
    assert.same({5, 3}, gi:shape())
    for _, p in ipairs(m:parameters()) do assert.equal(0, p.grad:sum()) end
    local gi2 = m:backward(x, g):clone()
    assert.is_true(gan.max_abs_diff(gi, gi2) < 1e-6)
    local nonzero = 0
    for _, p in ipairs(m:parameters()) do if p.grad:sum() ~= 0 then nonzero = nonzero + 1 end end
    assert.is_true(nonzero > 0)
  end)

  it("Dropout drops in training and is the identity in evaluation", function()
    local d = nn.Dropout(0.5)
    local x = gan.ones(1000)
    local y = d:forward(x)
    local lo, hi = y:minmax()
    assert.equal(0, lo)
    assert.equal(2, hi)
    assert.is_true(math.abs(y:mean() - 1) < 0.15)
    -- the gradient goes back through the same mask, in any shape of that count
    local g = d:backward(x, gan.ones(10, 100))
    assert.is_true(gan.equal(g, y))
    d:evaluate()
    assert.is_true(gan.equal(d:forward(x), x))
  end)

  it("BatchNorm uses batch statistics in training and running ones in evaluation", function()
    local bn = nn.BatchNorm(2, {momentum = 0.8})
    local x = gan.tensor{{1, 10}, {3, 30}}
    local y = bn:forward(x):totable()
    assert.is_true(math.abs(y[1][1] + y[2][1]) < 1e-5)          -- mean 0
    assert.is_true(math.abs(y[1][1] + 0.9995) < 1e-3)           -- -1/sqrt(1+1e-3)
    -- running = 0.8 * running + 0.2 * batch
    assert.is_true(math.abs(bn.running_mean:totable()[1] - 0.4) < 1e-6)
    assert.is_true(math.abs(bn.running_var:totable()[2] - (0.8 + 0.2 * 100)) < 1e-4)
    bn:evaluate()
    local e = bn:forward(gan.tensor{{0.4, 4}}):totable()
    assert.is_true(math.abs(e[1][1]) < 1e-6)
  end)

  it("BCE matches its closed form and BCEWithLogits agrees", function()
    local p, t = gan.tensor{{0.9}, {0.2}}, gan.tensor{{1}, {0}}
    local expected = -(math.log(0.9) + math.log(0.8)) / 2
    assert.is_true(math.abs(nn.BCE():forward(p, t) - expected) < 1e-6)
    local z = gan.tensor{{math.log(0.9 / 0.1)}, {math.log(0.2 / 0.8)}}
    assert.is_true(math.abs(nn.BCEWithLogits():forward(z, t) - expected) < 1e-5)
  end)

  it("BCE can leave its loss unread, as a 1-element tensor, and backward still works", function()
    local p, t = gan.tensor{{0.9}, {0.2}}, gan.tensor{{1}, {0}}
    local bce = nn.BCE()
    local read = bce:forward(p, t)
    local g_read = bce:backward():totable()
    local l = bce:forward(p, t, false)
    assert.equal("userdata", type(l))
    assert.same({1}, l:shape())
    assert.is_true(math.abs(l:totable()[1] - read) < 1e-7)
    assert.same(g_read, bce:backward():totable())
  end)

  it("Adam moves parameters against the gradient", function()
    local l = nn.Linear(1, 1)
    l.weight:fill(1)
    local opt = gan.optim.Adam(l:parameters(), {lr = 0.1})
    l.grad_weight:fill(2)
    opt:step()
    assert.is_true(math.abs(l.weight:item() - 0.9) < 1e-5)   -- first step moves by lr
    assert.equal(1, opt.t)
  end)

  it("Adam takes Keras's form by default, the paper's on request", function()
    -- a gradient of 1e-6 at step 1: Keras's eps acts on sqrt(v) = 3.2e-8, so
    -- the step is lr * 1e-6 / (1e-6 + 3.2e-6); the paper's on sqrt(vhat) = 1e-6
    local steps = {}
    for _, form in ipairs{"keras", "paper"} do
      local l = nn.Linear(1, 1)
      l.weight:fill(0)
      local opt = gan.optim.Adam(l:parameters(), {lr = 2e-4, beta1 = 0.5, form = form})
      l.grad_weight:fill(1e-6)
      opt:step()
      steps[form] = -l.weight:item()
      assert.truthy(tostring(opt):find(form .. " form", 1, true))
    end
    assert.near(4.8050304e-05, steps.keras, 1e-10)   -- what Keras 3.15.1 computes
    assert.near(2e-4 / 1.1, steps.paper, 1e-10)
    assert.error_matches(function() gan.optim.Adam(nn.Linear(1, 1):parameters(), {form = "x"}) end,
      "option 'form' must be \"keras\" or \"paper\"")
  end)

  it("learns XOR to a loss under 0.05 (examples/xor.lua)", function()
    local chunk = assert(loadfile(util.root .. "/examples/xor.lua"))
    _G.arg = {[0] = "examples/xor.lua", "1500"}
    local print0 = _G.print
    _G.print = function() end
    local ok, loss = pcall(chunk, "1500")
    _G.print = print0
    assert.is_true(ok, loss)
    assert.is_true(loss < 0.05, "loss " .. tostring(loss))
  end)

  describe("Sequential's Linear and activation in one call", function()
    -- the same layers run one module at a time: no fusion (a forward or a
    -- backward other than gan's own, here a wrapper, is always called)
    local function unfused(seq)
      for _, m in ipairs(seq.modules) do
        local cls = getmetatable(m)
        m.forward = function(...) return cls.forward(...) end
        m.backward = function(...) return cls.backward(...) end
      end
      return seq
    end
    -- f() with gan.C.linear_act_backward counted: the number of fused calls
    local function fused_backwards(f)
      local saved, n = gan.C.linear_act_backward, 0
      gan.C.linear_act_backward = function(...) n = n + 1; return saved(...) end
      local ok, err = pcall(f)
      gan.C.linear_act_backward = saved
      assert(ok, err)
      return n
    end
    local function copy_params(dst, src)
      for i, p in ipairs(src:parameters()) do dst:parameters()[i].value:copy(p.value) end
    end

    it("gives the outputs and gradients of the modules run one by one", function()
      for _, act in ipairs{nn.LeakyReLU(0.2), nn.ReLU(), nn.Sigmoid(), nn.Tanh()} do
        local name = tostring(act)
        local fused = nn.Sequential(nn.Linear(5, 7), act, nn.Linear(7, 3), nn.Sigmoid())
        local plain = unfused(nn.Sequential(nn.Linear(5, 7), getmetatable(act)(act.alpha),
                                            nn.Linear(7, 3), nn.Sigmoid()))
        copy_params(plain, fused)
        local x, g = gan.randn(4, 5), gan.randn(4, 3)
        local yf, yp = fused:forward(x), plain:forward(x)
        assert.is_true(gan.max_abs_diff(yf, yp) < 1e-6, name .. ": output")
        -- each module's output is what its own forward gives: the Linear's
        -- is the pre-activation, which the activation's backward reads
        for i = 1, 4 do
          assert.is_true(gan.max_abs_diff(fused.modules[i].output, plain.modules[i].output) < 1e-6,
                         name .. ": output of module " .. i)
        end
        -- the activation's input, for its backward, is the Linear's output
        assert.equal(fused.modules[1].output, fused.inputs[2])
        assert.equal(fused.modules[3].output, fused.inputs[4])
        -- twice: the gradients overwritten after zero_grad, then added to
        fused:zero_grad(); plain:zero_grad()
        for round = 1, 2 do
          local gf, gp
          assert.equal(2, fused_backwards(function() gf = fused:backward(x, g) end))
          assert.equal(0, fused_backwards(function() gp = plain:backward(x, g) end))
          assert.is_true(gan.max_abs_diff(gf, gp) < 1e-6, name .. ": input gradient")
          for i, p in ipairs(fused:parameters()) do
            assert.is_true(gan.max_abs_diff(p.grad, plain:parameters()[i].grad) < 1e-6,
                           name .. ": gradient of " .. p.name .. ", round " .. round)
          end
          -- each module's input gradient is what its own backward gives
          for i = 1, 4 do
            assert.is_true(gan.max_abs_diff(fused.modules[i].grad_input,
                                            plain.modules[i].grad_input) < 1e-6,
                           name .. ": input gradient of module " .. i)
          end
        end
        -- no input gradient asked of the chain: the first Linear makes none
        local before = fused.modules[1].grad_input:clone()
        fused.modules[1].grad_input:fill(7)
        assert.is_nil(fused:backward(x, g, false))
        assert.equal(7, fused.modules[1].grad_input:get(1, 1))
        assert.is_true(before:numel() > 0)
        -- backward_input has no bias gradient to sum: not fused, the same
        assert.equal(0, fused_backwards(function() fused:backward_input(x, g) end))
        assert.is_true(gan.max_abs_diff(fused:backward_input(x, g), plain:backward_input(x, g))
                       < 1e-6, name .. ": backward_input")
      end
    end)

    it("runs backward one module at a time where fusing could change it", function()
      local x, g = gan.randn(4, 5), gan.randn(4, 3)
      local function pair_of(f)
        local a = nn.Sequential(nn.Linear(5, 3), nn.Tanh())
        local b = unfused(nn.Sequential(nn.Linear(5, 3), nn.Tanh()))
        copy_params(b, a)
        f(a); f(b)
        a:forward(x); b:forward(x)
        a:zero_grad(); b:zero_grad()
        return a, b
      end
      -- a Linear without a bias
      local a, b = pair_of(function(s) s.modules[1].bias, s.modules[1].grad_bias = nil, nil end)
      assert.equal(0, fused_backwards(function() a:backward(x, g) end))
      -- an instance's backward (a hook): called
      local calls = 0
      a, b = pair_of(function() end)
      a.modules[2].backward = function(...) calls = calls + 1; return nn.Tanh.backward(...) end
      assert.equal(0, fused_backwards(function() a:backward(x, g) end))
      assert.equal(1, calls)
      -- the bias gradient over the incoming gradient: one module at a time,
      -- as before (the gradient read before the bias gradient is written)
      a, b = pair_of(function() end)
      local ga, gb = gan.zeros(5, 3), gan.zeros(5, 3)
      ga:rows(2, 4):copy(g); gb:rows(2, 4):copy(g)
      a.modules[1].grad_bias = ga:rows(5, 1):view(3)   -- the last row of the gradient
      b.modules[1].grad_bias = gb:rows(5, 1):view(3)
      assert.equal(0, fused_backwards(function() a:backward(x, ga:rows(2, 4)) end))
      b:backward(x, gb:rows(2, 4))
      assert.is_true(gan.max_abs_diff(a.modules[1].grad_bias, b.modules[1].grad_bias) < 1e-6)
      assert.is_true(gan.max_abs_diff(a.modules[1].grad_weight, b.modules[1].grad_weight) < 1e-6)
      -- ... over the activation's input (the Linear's output) or its output
      for _, over in ipairs{function(s) return s.modules[1].output end,
                            function(s) return s.modules[2].output end} do
        a, b = pair_of(function() end)
        a.modules[1].grad_bias = over(a):rows(4, 1):view(3)
        b.modules[1].grad_bias = over(b):rows(4, 1):view(3)
        assert.equal(0, fused_backwards(function() a:backward(x, g) end))
        b:backward(x, g)
        assert.is_true(gan.max_abs_diff(a.modules[1].grad_bias, b.modules[1].grad_bias) < 1e-6)
        assert.is_true(gan.max_abs_diff(a.modules[1].grad_input, b.modules[1].grad_input) < 1e-6)
      end
    end)

    it("calls a forward that an instance overrides, and takes its own output as input", function()
      local act = nn.LeakyReLU(0.2)
      local calls = 0
      act.forward = function(self, x) calls = calls + 1; return nn.LeakyReLU.forward(self, x) end
      local seq = nn.Sequential(nn.Linear(3, 3), act)
      seq:forward(gan.randn(2, 3))
      assert.equal(1, calls)
      -- the chain fed its own output (the activation's buffer) as input
      local fused = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
      local x = fused:forward(gan.randn(2, 4)):clone()
      local got = fused:forward(fused.output):clone()   -- fused.output holds x
      assert.is_true(gan.max_abs_diff(got, fused:forward(x)) < 1e-6)
      -- ... or a view of it
      local fx = fused:forward(x):clone()
      got = fused:forward(fused.output:view(4, 2):view(2, 4)):clone()   -- f(f(x))
      assert.is_true(gan.max_abs_diff(got, fused:forward(fx)) < 1e-6)
      local flat = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Tanh())   -- a view
      fx = flat:forward(x):clone()
      got = flat:forward(flat.output):clone()
      assert.is_true(gan.max_abs_diff(got, flat:forward(fx)) < 1e-6)
      -- an activation used twice in a chain
      local twice = nn.Tanh()
      local seq2 = nn.Sequential(nn.Linear(4, 4), twice, nn.Linear(4, 4), twice)
      local plain2 = unfused(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh()))
      copy_params(plain2, seq2)
      assert.is_true(gan.max_abs_diff(seq2:forward(x), plain2:forward(x)) < 1e-6)
    end)

    it("leaves the errors of the activation's half to the activation", function()
      local s = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
      s:forward(gan.randn(2, 3))
      s.modules[2].output:free()
      local ok, err = pcall(s.forward, s, gan.randn(2, 3))
      assert.is_false(ok)
      assert.matches("in module 2 %(Tanh%) of Sequential: .*freed", err)
      local l = nn.Sequential(nn.Linear(3, 2), nn.LeakyReLU())
      l.modules[2].alpha = "x"
      ok, err = pcall(l.forward, l, gan.randn(2, 3))
      assert.is_false(ok)
      assert.matches("in module 2 %(LeakyReLU%) of Sequential", err)
    end)

    it("leaves the errors of the activation's half of backward to the activation", function()
      local function chain()
        local s = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
        s:forward(gan.randn(2, 3))
        s:zero_grad()
        return s
      end
      local s = chain()
      s.modules[1].output:free()   -- the activation's input
      local ok, err = pcall(s.backward, s, gan.randn(2, 3), gan.randn(2, 2))
      assert.is_false(ok)
      assert.matches("in module 2 %(Tanh%) of Sequential: .*freed", err)
      -- the activation's output not the size of its input: the fused call's
      -- error is the activation's
      s = chain()
      s.modules[2].output = gan.randn(1, 2)
      s.output = s.modules[2].output
      ok, err = pcall(s.backward, s, gan.randn(2, 3), gan.randn(1, 2))
      assert.is_false(ok)
      assert.matches("in module 2 %(Tanh%) of Sequential: activation backward: gradient is 1x2", err)
      -- the activation's gradient on another device than its input
      s = chain()
      local other = gan.device() == "cpu" and "cuda" or "cpu"
      if pcall(gan.zeros, 1, other) then
        ok, err = pcall(s.backward, s, gan.randn(2, 3), gan.randn(2, 2):to(other))
        assert.is_false(ok)
        assert.matches("in module 2 %(Tanh%) of Sequential: activation backward", err)
      end
      -- the Linear's half: its own
      s = chain()
      s.modules[1].grad_weight = gan.zeros(5)
      ok, err = pcall(s.backward, s, gan.randn(2, 3), gan.randn(2, 2))
      assert.is_false(ok)
      assert.matches("in module 1 %(Linear%) of Sequential: linear_backward: weight gradient", err)
    end)

    it("calls a forward that a class overrides (a hook)", function()
      local calls, saved = {}, {nn.Linear.forward, nn.Sigmoid.forward}
      local function hook(name, f)
        return function(...) calls[name] = (calls[name] or 0) + 1; return f(...) end
      end
      local ok, err = pcall(function()
        nn.Linear.forward = hook("Linear", saved[1])
        nn.Sequential(nn.Linear(3, 2), nn.Tanh()):forward(gan.randn(2, 3))
        nn.Linear.forward = saved[1]
        nn.Sigmoid.forward = hook("Sigmoid", saved[2])
        nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()):forward(gan.randn(2, 3))
      end)
      nn.Linear.forward, nn.Sigmoid.forward = saved[1], saved[2]
      assert(ok, err)
      assert.same({Linear = 1, Sigmoid = 1}, calls)
    end)
  end)

  describe("errors", function()
    it("name the argument of a bad forward", function()
      assert.has_error(function() nn.Linear(2, 3):forward(nil) end,
        "bad argument #1 to 'forward' (tensor expected, got nil)")
    end)
    it("name the shapes of a mismatch", function()
      assert.error_matches(function() nn.Linear(2, 3):forward(gan.zeros(4, 5)) end,
        "input is 4x5 but weight is 3x2")
    end)
    it("refuse backward before forward", function()
      assert.error_matches(function() nn.Linear(2, 3):backward(gan.zeros(1, 2), gan.zeros(1, 3)) end,
        "backward before forward")
      assert.error_matches(function() nn.BCE():backward() end, "backward before forward")
    end)
    it("name the failing child of a Sequential", function()
      local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(2, 1))
      local ok, err = pcall(m.forward, m, gan.zeros(2, 4))
      assert.is_false(ok)
      assert.truthy(err:find("^in module 3 %(Linear%) of Sequential: .*input is 2x3 but weight is 1x2"), err)
    end)
    it("check constructor arguments and options", function()
      assert.error_matches(function() nn.Linear(0, 3) end, "positive integer")
      assert.error_matches(function() nn.Dropout(1.5) end, "p in %[0, 1%)")
      assert.error_matches(function() gan.optim.Adam(nn.Linear(1, 1):parameters(), {lr = -1}) end,
        "option 'lr'")
      assert.error_matches(function() nn.Sequential(nn.ReLU(), 5) end, "module 2 is a number")
    end)
    it("refuse a prediction and a target of different shapes", function()
      assert.error_matches(function() nn.BCE():forward(gan.rand(2, 1), gan.rand(1, 2)) end,
        "BCE: prediction is 2x1 but target is 1x2 %(shapes must match%)")
      assert.error_matches(function() nn.BCE():forward(gan.rand(2, 1), gan.rand(2, 1), "x") end,
        "bad argument #3 to 'forward' %(a 1%-element tensor for the loss, false or nothing")
    end)
    it("refuse an optimizer given one parameter twice (a module used twice)", function()
      local l = nn.Linear(2, 2)
      local m = nn.Sequential(l, nn.ReLU(), l)
      assert.error_matches(function() gan.optim.Adam(m:parameters()) end,
        "adam: parameter 1 and parameter 3 share memory %(is a module used twice%?")
    end)
  end)

  it("allocates no tensor in a repeated training step", function()
    local m = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.BatchNorm(16), nn.Dropout(0.5),
                            nn.Linear(16, 1), nn.Sigmoid())
    local opt = gan.optim.Adam(m:parameters())
    local x, y, bce = gan.randn(10, 8), gan.ones(10, 1), nn.BCE()
    local function step()
      m:zero_grad()
      bce:forward(m:forward(x), y)
      m:backward(x, bce:backward(), false)
      opt:step()
    end
    step()
    local before = gan.memory().allocs
    for _ = 1, 5 do step() end
    assert.equal(before, gan.memory().allocs)
  end)
end)
