-- A training step allocates nothing: no tensor (counted by the backend,
-- gan.memory().allocs) and no Lua object (counted by the gan program's
-- allocator, gan.lua_allocs()) over 50 steps of the seed's model at 8x8
-- (spec/support/heap_steps.lua).  And no malloc anywhere in the process:
-- tests/malloc_count.c counts every heap allocation of every library and
-- thread (valgrind's "total heap usage: N allocs", at native speed).
local util = require "support.util"

-- build/tests/libmalloc_count.so, or nil where it is not built (the
-- sanitizers' build: ASan owns malloc)
local function counter()
  local build = os.getenv("GAN_BUILD") or (util.root .. "/build")
  local lib = build .. "/tests/libmalloc_count.so"
  local f = io.open(lib, "rb")
  if not f then return nil end
  f:close()
  return lib
end

-- the process's heap allocations in `gan args...`, as the counter reports
-- them at exit.  OpenBLAS single-threaded: its threaded GEMM mallocs a job
-- array per call (level3_thread.c), which is the library's, not ours; the
-- engine's own loops keep their OpenMP threads.
local function mallocs(lib, args)
  local code, out, err = util.run(args, nil, {LD_PRELOAD = lib, OPENBLAS_NUM_THREADS = 1})
  assert.equal(0, code, err)
  local n = err:match("malloc_count (%d+)")
  assert.is_not_nil(n, "no count from " .. lib .. ": " .. err)
  return tonumber(n), out
end

describe("a training step", function()
  it("allocates no tensor and no Lua object after the first", function()
    local code, out, err = util.run({util.root .. "/spec/support/heap_steps.lua", "50"})
    assert.equal(0, code, err)
    assert.equal("0\t0\n", out)
  end)

  it("calls malloc nowhere in the process: 1 and 4 steps make as many", function()
    local lib = counter()
    if not lib then pending("no tests/libmalloc_count.so in this build") return end
    local script = util.root .. "/spec/support/heap_steps.lua"
    local one, out = mallocs(lib, {script, "1"})
    local four = mallocs(lib, {script, "4"})
    assert.equal("0\t0\n", out)
    assert.is_true(one > 1000, "implausibly few allocations: " .. one)
    assert.equal(one, four)
  end)

  it("is counted by malloc_count: 1000 more Lua tables, 1000 more mallocs", function()
    local lib = counter()
    if not lib then pending("no tests/libmalloc_count.so in this build") return end
    local code = "local t = {} for i = 1, %d do t[i] = {} end"
    local a = mallocs(lib, {"-e", code:format(10)})
    local b = mallocs(lib, {"-e", code:format(1010)})
    assert.is_true(b - a >= 1000, ("%d -> %d"):format(a, b))
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
