-- The tensor API of require "gan", and its errors.
local gan = require "gan"
local util = require "support.util"

describe("tensors", function()
  before_each(function() gan.device(util.device) end)

  it("are made from nested tables and converted back", function()
    local t = gan.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.same({2, 3}, t:shape())
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    assert.equal(6, t:numel())
    assert.equal(2, #t)
    assert.equal(5, t:get(2, 2))
  end)

  it("have zeros, ones, randn and rand constructors taking numbers or a table", function()
    assert.same({2, 3}, gan.zeros(2, 3):shape())
    assert.same({4, 1, 2}, gan.ones{4, 1, 2}:shape())
    assert.equal(0, gan.zeros(2, 3):sum())
    assert.equal(6, gan.ones(2, 3):sum())
    local lo, hi = gan.rand(1000):minmax()
    assert.is_true(lo >= 0 and hi < 1)
    local x = gan.randn(100000)
    assert.is_true(math.abs(x:mean()) < 0.02)
  end)

  it("show their shape and device in tostring", function()
    local s = tostring(gan.randn(2, 3))
    assert.truthy(s:find("tensor 2x3 (" .. util.device .. ")", 1, true))
  end)

  it("are reproducible with gan.seed", function()
    gan.seed(42)
    local a = gan.randn(3, 4)
    gan.seed(42)
    local b = gan.randn(3, 4)
    assert.is_true(gan.equal(a, b))
    assert.is_false(gan.equal(a, gan.randn(3, 4)))
  end)

  it("compare with gan.equal by shape and value", function()
    assert.is_true(gan.equal(gan.tensor{1, 2}, gan.tensor{1, 2}))
    assert.is_false(gan.equal(gan.tensor{1, 2}, gan.tensor{1, 3}))
    assert.is_false(gan.equal(gan.tensor{1, 2}, gan.tensor{{1, 2}}))
  end)

  it("give row views that share memory and keep the parent alive", function()
    local t = gan.tensor{{1, 2}, {3, 4}, {5, 6}}
    local v = t:rows(2, 2)
    t = nil
    collectgarbage()
    assert.same({{3, 4}, {5, 6}}, v:totable())
    v:fill(0)
    assert.same({{0, 0}, {0, 0}}, v:totable())
  end)

  it("do arithmetic in place", function()
    local a = gan.tensor{1, 2, 3}
    a:add(gan.tensor{1, 1, 1}, 2)          -- a = 2*x + a
    assert.same({3, 4, 5}, a:totable())
    a:scale(0.5)
    assert.same({1.5, 2, 2.5}, a:totable())
    assert.equal(2, a:mean())
  end)

  it("raise clear errors on misuse, and the state survives", function()
    assert.has_error(function() gan.zeros(0, 3) end,
      "bad argument #1 to 'zeros' (dimension must be positive)")
    assert.error_matches(function() gan.tensor{{1, 2}, {3}} end, "ragged")
    assert.error_matches(function() gan.tensor{{1, "x"}} end, "not a number")
    assert.error_matches(function() gan.zeros(2, 3):add(gan.zeros(3, 3)) end,
                         "y is 2x3 but x is 3x3")
    -- the same count in another shape is a mistake too, not a reshape
    assert.error_matches(function() gan.zeros(2, 3):add(gan.zeros(3, 2)) end,
                         "y is 2x3 but x is 3x2 %(shapes must match%)")
    assert.error_matches(function() gan.zeros(2, 3):mul(gan.zeros(2, 3), gan.zeros(6)) end,
                         "shapes must match")
    -- an output shifted over its input (in place is fine)
    local t = gan.tensor{1, 2, 3, 4}
    assert.error_matches(function() t:rows(1, 3):add(t:rows(2, 3)) end, "share memory")
    assert.same({2, 4, 6, 8}, t:add(t):totable())
    assert.error_matches(function() gan.zeros(2):rows(2, 5) end, "5 rows from row 2 do not fit in the 2 rows")
    assert.error_matches(function() gan.zeros(2, 2):item() end, "not a single value")
    assert.error_matches(function() gan.zeros(2):copy("x") end, "tensor expected, got string")
    assert.error_matches(function() gan.device("tpu") end, "unknown device 'tpu'")
  end)

  it("refuse use after free", function()
    local t = gan.zeros(2, 2)
    t:free()
    assert.equal("tensor (freed)", tostring(t))
    assert.error_matches(function() t:sum() end, "tensor has been freed")
    assert.error_matches(function() gan.zeros(2, 2):copy(t) end, "tensor has been freed")
    t:free() -- twice is harmless
  end)

  it("are closed by <close> variables", function()
    local f = load[[
      local gan = require "gan"
      local keep
      do
        local t <close> = gan.zeros(4)
        keep = t
      end
      return tostring(keep)
    ]]
    assert.equal("tensor (freed)", f())
  end)

  it("report CUDA as unavailable with a clear error when it is", function()
    if gan.backends:find("cuda") then
      local ok, err = pcall(gan.zeros, 2, "cuda")
      if not ok then assert.truthy(err:find("cuda")) end
    else
      assert.error_matches(function() gan.zeros(2, "cuda") end, "not built")
    end
  end)
end)
