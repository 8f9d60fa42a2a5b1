-- gan.metrics: the sliced Wasserstein distance, the memorisation check, and
-- scripts/evaluate.lua.
--
-- The fixtures are made here: "real" images are discs of random colour,
-- size and place with a stalk and speckles on a shaded background (sharp
-- edges and fine detail, so every pyramid level has something to see); two
-- draws of that distribution are two sets of the same kind.
local gan = require "gan"
local nn = gan.nn
local util = require "support.util"

-- n images (n, 3, S, S) in [0, 1], from the gan generator
local function fixtures(n, S)
  local u = gan.rand(n, 8, "cpu"):totable()   -- per image: 8 uniform draws
  local speck = gan.rand(n, S, S, "cpu"):totable()
  local v = {}
  for i = 1, n do
    local cx, cy = S * (0.3 + 0.4 * u[i][1]), S * (0.35 + 0.4 * u[i][2])
    local r = S * (0.15 + 0.15 * u[i][3])
    local col = {0.6 + 0.4 * u[i][4], 0.3 * u[i][5], 0.2 * u[i][6]}
    for c = 1, 3 do
      for y = 1, S do
        for x = 1, S do
          local d2 = (x - cx) ^ 2 + (y - cy) ^ 2
          local val
          if d2 < r * r then
            val = col[c] + (speck[i][y][x] > 0.9 and 0.3 or 0)   -- seeds
          elseif math.abs(x - cx) < 2 and y < cy - r and y > cy - r - S / 6 then
            val = ({0.1, 0.6, 0.1})[c]                           -- the stalk
          else
            val = 0.8 * (y / S) + 0.1 * u[i][7] + 0.05 * c      -- shaded background
          end
          v[#v + 1] = math.min(1, val)
        end
      end
    end
  end
  return gan.tensor(v, "cpu"):view(n, 3, S, S)
end

-- x blurred by a 5x5 box on each channel: a Conv2d with fixed weights
local function blur(x)
  local m = nn.Conv2d(3, 3, 5, {padding = 2, bias = false, device = "cpu"})
  local w = {}
  for k = 1, 3 do
    for c = 1, 3 do
      for _ = 1, 25 do w[#w + 1] = k == c and 1 / 25 or 0 end
    end
  end
  m.weight:copy(gan.tensor(w, "cpu"))
  return m:forward(x):clone()
end

describe("gan.metrics.swd", function()
  local conv_ok = pcall(function() nn.Conv2d(1, 1, 1, {device = "cpu"}) end)
  local a, b
  setup(function()
    gan.seed(21)
    a, b = fixtures(64, 32), fixtures(64, 32)
  end)

  it("is about 0 for a set against itself and large against noise", function()
    gan.seed(1)
    local same, levels = gan.metrics.swd(a, a)
    local noise = gan.metrics.swd(a, gan.rand(64, 3, 32, 32, "cpu"))
    assert.same({32, 16}, levels.res)
    assert.equal(2, #levels)
    assert.near(same, (levels[1] + levels[2]) / 2, 1e-9)
    assert.is_true(same < 0.1 * noise, ("self %g, noise %g"):format(same, noise))
    assert.is_true(noise > 100, noise)
  end)

  it("orders real < blurred real < noise", function()
    assert.is_true(conv_ok)
    gan.seed(2)
    local real = gan.metrics.swd(a, b)
    local blurred = gan.metrics.swd(a, blur(b))
    local noise = gan.metrics.swd(a, gan.rand(64, 3, 32, 32, "cpu"))
    assert.is_true(real < blurred and blurred < noise,
      ("real %g, blurred %g, noise %g"):format(real, blurred, noise))
  end)

  it("is reproducible from the seed and takes sets of different sizes", function()
    gan.seed(3)
    local x = gan.metrics.swd(a, b:rows(1, 40))
    gan.seed(3)
    assert.equal(x, gan.metrics.swd(a, b:rows(1, 40)))
  end)

  it("reads folders at the given size", function()
    local dir = util.tmpdir()
    for i = 1, 16 do
      gan.images.save_grid(a:rows(i, 1), ("%s/%02d.png"):format(dir, i), {cols = 1})
    end
    gan.seed(4)
    local avg, levels = gan.metrics.swd(dir, a:rows(1, 16), {size = 32})
    local noise = gan.metrics.swd(dir, gan.rand(16, 3, 32, 32, "cpu"), {size = 32})
    -- without a size, a folder is read at the side of the tensor beside it
    gan.seed(4)
    assert.equal(avg, (gan.metrics.swd(dir, a:rows(1, 16))))
    assert.equal(16, gan.metrics.memorisation(a:rows(1, 16), dir).samples.n)
    util.rmdir(dir)
    assert.same({32, 16}, levels.res)
    assert.is_true(avg < 0.3 * noise, ("%g vs noise %g"):format(avg, noise))  -- the same images
  end)

  it("names bad arguments", function()
    assert.error_matches(function() gan.metrics.swd(a, gan.rand(4, 3, 16, 16, "cpu")) end,
      "the sets have images of 32x32 and 16x16")
    assert.error_matches(function() gan.metrics.swd(a, gan.rand(4, 12)) end,
      "images %(N, 3, S, S%) expected, got 4x12")
    assert.error_matches(function() gan.metrics.swd(gan.rand(2, 3, 8, 8, "cpu"),
                                                    gan.rand(2, 3, 8, 8, "cpu")) end,
      "smaller than the coarsest level")
    assert.error_matches(function() gan.metrics.swd("/nonexistent/dir", a, {size = 32}) end,
      "nonexistent")
  end)
end)

describe("gan.metrics.memorisation", function()
  it("tells copies of training images from new images", function()
    gan.seed(4)
    local train = fixtures(40, 16)
    local copies = train:rows(1, 20):clone():add(gan.randn(20, 3, 16, 16, "cpu"), 0.01)
    local m = gan.metrics.memorisation(copies, train)
    assert.is_false(m.ok)
    assert.is_true(m.ratio < 0.2, m.ratio)
    assert.is_true(m.below > 0.9, m.below)
    for i = 1, 20 do assert.equal(i, m.index[i]) end
    local fresh = gan.metrics.memorisation(fixtures(20, 16), train)
    assert.is_true(fresh.ratio > 0.5, fresh.ratio)
    assert.equal(40, fresh.real.n)
    assert.is_true(fresh.samples.min > 0)
  end)

  it("nearest finds exact neighbours and can leave each row out", function()
    local ref = gan.tensor({{0, 0}, {3, 4}, {10, 0}}, "cpu")
    local d, idx = gan.metrics.nearest(gan.tensor({{3, 4}, {9, 0}}, "cpu"), ref)
    assert.same({0, 1}, d)
    assert.same({2, 3}, idx)
    d, idx = gan.metrics.nearest(ref, ref, true)
    assert.same({5, 5}, {d[1], d[2]})
    assert.near(math.sqrt(65), d[3], 1e-5)
    assert.same({2, 1, 2}, idx)
  end)
end)

describe("scripts/evaluate.lua", function()
  it("prints the SWD per level, the real-vs-real floor and the memorisation check", function()
    local dir, tmp = util.tmpdir(), util.tmpdir()
    gan.seed(6)
    local real = fixtures(24, 16)
    for i = 1, 24 do
      gan.images.save_grid(real:rows(i, 1), ("%s/%02d.png"):format(dir, i), {cols = 1})
    end
    -- an untrained G at 16x16 in a checkpoint, as the DCGAN script saves it
    local G = nn.Sequential(nn.Reshape(8, 1, 1), nn.ConvTranspose2d(8, 4, 4, {device = "cpu"}),
                            nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, {stride = 2, padding = 1,
                                                                    device = "cpu"}),
                            nn.ConvTranspose2d(3, 3, 4, {stride = 2, padding = 1, device = "cpu"}),
                            nn.Tanh())
    gan.save(tmp .. "/g.ckpt", {models = {G = G}, noise = gan.randn(4, 8, "cpu"), range = "-1,1",
                               opts = {size = 16}, epoch = 7})
    local code, out, err = util.run({util.root .. "/scripts/evaluate.lua", "--real", dir,
                                     "--checkpoint", tmp .. "/g.ckpt", "--n", "30"})
    assert.equal(0, code, err)
    assert.truthy(out:find("30 samples of G from .*g.ckpt %(epoch 7%); 24 real images"), out)
    assert.truthy(out:find("compared at 16x16 (the run's --size)", 1, true), out)
    assert.truthy(out:find("samples vs real %(30 vs 24%) +[%d.]+ +[%d.]+\n"), out)
    assert.truthy(out:find("real vs real, halves %(12 vs 12%) +[%d.]+ +[%d.]+\n"), out)
    assert.truthy(out:find("ratio to the floor"), out)
    assert.truthy(out:find("samples %(30%) +[%d.]+"), out)
    assert.truthy(out:find("real, leaving each out %(24%)"), out)
    assert.truthy(out:find("verdict: "), out)
    -- at another size than G's: its samples are resized like the photos
    code, out, err = util.run({util.root .. "/scripts/evaluate.lua", "--real", dir,
                               "--checkpoint", tmp .. "/g.ckpt", "--n", "30", "--size", "32"})
    assert.equal(0, code, err)
    assert.truthy(out:find("compared at 32x32 (--size; G's 16x16 resized)", 1, true), out)
    assert.truthy(out:find("samples vs real %(30 vs 24%) +[%d.]+ +[%d.]+ +[%d.]+\n"), out)
    -- a folder of images instead of a checkpoint; and the usage errors
    code, out, err = util.run({util.root .. "/scripts/evaluate.lua", "--real", dir, "--fake", dir,
                               "--size", "16"})
    assert.equal(0, code, err)
    assert.truthy(out:find("24 images from"), out)
    assert.truthy(out:find("compared at 16x16 (--size)", 1, true), out)
    code, out, err = util.run({util.root .. "/scripts/evaluate.lua", "--real", dir, "--fake", dir})
    assert.equal(0, code, err)
    assert.truthy(out:find("compared at 64x64 (the default: set --size)", 1, true), out)
    code, _, err = util.run({util.root .. "/scripts/evaluate.lua", "--real", dir})
    assert.equal(2, code)
    assert.truthy(err:find("give one of --checkpoint FILE and --fake DIR", 1, true), err)
    util.rmdir(dir)
    util.rmdir(tmp)
  end)
end)
