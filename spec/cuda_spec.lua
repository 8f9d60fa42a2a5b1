-- The CUDA backend against the CPU backend.  Without a GPU every test here
-- is reported as pending (busted counts them), never as passed.  The checks
-- themselves live in programs that also run on a device machine without
-- Busted: tests/test_cuda.c (every backend slot, op by op) and
-- bench/gpu_steps.lua (modules, and 20 seed steps with losses equal to the
-- CPU's within 1e-3 relative).
local gan = require "gan"
local util = require "support.util"

local has_gpu, why = pcall(gan.zeros, 1, "cuda")
-- why gan.cudnn() has no library: "" if it has one; "not built" (no CUDA)
-- and "built without" (no cuDNN) mean there is none to look for
local why_none = tostring(select(2, gan.cudnn()) or "")
local cudnn_built = not (why_none:find("not built") or why_none:find("built without"))

-- cuBLAS is loaded at run time, when the backend is made, not linked:
-- these need no GPU.
describe("cuBLAS loading", function()
  local built = not tostring(select(2, gan.cublas()) or ""):find("not built")
  local function probe(env)
    local code, out, err = util.run({"-e", "print(gan.cublas())"}, nil, env)
    assert.equal(0, code, err)
    return out
  end
  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end
  local toolkit = "/usr/local/cuda/lib/libcublas.so.13"
  if not exists(toolkit) then toolkit = "/usr/local/cuda/lib64/libcublas.so.13" end

  it("is not linked into gan, which starts without it", function()
    local code, out = util.run({"--version"}, nil, {GAN_CUBLAS = "/nonexistent/cublas"})
    assert.equal(0, code)
    assert.truthy(out:find("backends: cpu", 1, true), out)
    local p = io.popen("readelf -d '" .. util.bin .. "' 2>&1")
    local dyn = p:read("a")
    p:close()
    if not dyn:find("NEEDED", 1, true) then
      pending("readelf (binutils) could not read " .. util.bin .. ": " .. dyn)
      return
    end
    assert.falsy(dyn:find("libcublas", 1, true), dyn)
  end)

  it("says why when the library is not there, naming GAN_CUBLAS", function()
    local out = probe{GAN_CUBLAS = "/nonexistent/cublas"}
    if not built then
      assert.truthy(out:find("not built", 1, true), out)
      return
    end
    assert.truthy(out:find("^nil\tcuBLAS 13 could not be loaded: "), out)
    assert.truthy(out:find("/nonexistent/cublas: cannot open", 1, true), out)
    assert.truthy(out:find("(GAN_CUBLAS is /nonexistent/cublas)", 1, true), out)
    -- a library that is not cuBLAS: the entry point it lacks
    local libm = "/lib/x86_64-linux-gnu/libm.so.6"
    if exists(libm) then
      out = probe{GAN_CUBLAS = libm}
      assert.truthy(out:find(libm .. " lacks cublasGetProperty", 1, true), out)
    end
  end)

  it("finds every entry point it uses in the toolkit's cuBLAS 13", function()
    if not built or not exists(toolkit) then
      pending("no CUDA in this build, or no " .. toolkit .. " here")
      return
    end
    -- the file, then its folder
    local out = probe{GAN_CUBLAS = toolkit}
    assert.truthy(out:find("^cuBLAS 13%.%d+%.%d+ %(" .. toolkit:gsub("%p", "%%%0") .. "%)"), out)
    local dir = toolkit:match("^(.*)/")
    out = probe{GAN_CUBLAS = dir}
    assert.truthy(out:find("^cuBLAS 13%.%d+%.%d+ %(" .. dir:gsub("%p", "%%%0") .. "/libcublas%.so%.13%)"), out)
    -- and with no GAN_CUBLAS, by the places it looks
    out = probe{GAN_CUBLAS = ""}
    assert.truthy(out:find("^cuBLAS 13%.%d+%.%d+ %("), out)
  end)
end)

-- cuDNN is loaded at run time, not linked: these need no GPU.
describe("cuDNN loading", function()
  local function probe(env)
    local code, out, err = util.run({"-e", "print(gan.cudnn())"}, nil, env)
    assert.equal(0, code, err)
    return out
  end

  it("says why when the library is not there, naming GAN_CUDNN", function()
    local out = probe{GAN_CUDNN = "/nonexistent/cudnn"}
    if not cudnn_built then
      assert.truthy(out:find(why_none, 1, true), out)
      return
    end
    assert.truthy(out:find("^nil\tcuDNN 9 could not be loaded: "), out)
    assert.truthy(out:find("/nonexistent/cudnn: cannot open", 1, true), out)
    assert.truthy(out:find("(GAN_CUDNN is /nonexistent/cudnn)", 1, true), out)
    local code, v = util.run({"--version"}, nil, {GAN_CUDNN = "/nonexistent/cudnn"})
    assert.equal(0, code)
    assert.truthy(v:find("cuDNN not found", 1, true), v)
  end)

  it("finds every entry point it uses in the toolkit's cuDNN 9", function()
    local dir = "/usr/local/cuda/lib64"
    if not cudnn_built or not util.read(dir .. "/libcudnn.so.9") then
      pending("no cuDNN in this build, or no " .. dir .. "/libcudnn.so.9 here")
      return
    end
    local out = probe{GAN_CUDNN = dir}
    assert.truthy(out:find("^cuDNN 9%.%d+%.%d+ %(" .. dir .. "/libcudnn.so.9%)"), out)
  end)
end)

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
