-- The CUDA backend against the CPU backend.  Without a GPU every test here
-- is reported as pending (busted counts them), never as passed.  The checks
-- themselves live in programs that also run on a device machine without
-- Busted: tests/test_cuda.c (every backend slot, op by op) and
-- bench/gpu_steps.lua (modules, and 20 seed steps with losses equal to the
-- CPU's within 1e-3 relative).
local gan = require "gan"
local util = require "support.util"

local has_gpu, why = pcall(gan.zeros, 1, "cuda")

describe("the CUDA backend", function()
  if not has_gpu then
    it("agrees with the CPU module by module and over 20 seed steps", function()
      pending("no GPU: " .. tostring(why))
    end)
    it("refuses --device cuda with a clear error", function()
      local ok, err = pcall(gan.device, "cuda")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("cuda"), err)
    end)
    return
  end

  it("agrees with the CPU module by module and over 20 seed steps", function()
    local code, out, err = util.run({util.root .. "/bench/gpu_steps.lua"})
    assert.equal(0, code, (out or "") .. (err or ""))
    assert.truthy(out:find("%d+ passed, 0 failed"), out)
  end)
end)
