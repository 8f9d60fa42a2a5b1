-- A training step allocates nothing: no tensor (counted by the backend,
-- gan.memory().allocs) and no Lua object (counted by the gan program's
-- allocator, gan.lua_allocs()) over 50 steps of the seed's model at 8x8
-- (spec/support/heap_steps.lua, which .ci/run also runs under valgrind).
local util = require "support.util"

describe("a training step", function()
  it("allocates no tensor and no Lua object after the first", function()
    local code, out, err = util.run({util.root .. "/spec/support/heap_steps.lua", "50"})
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
