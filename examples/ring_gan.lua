-- examples/ring_gan.lua: a GAN on 8 Gaussians on a ring, the classic test of
-- mode collapse (Metz et al. 2017, "Unrolled GANs").  A healthy G covers all
-- 8 modes; a collapsed one sits on one or two.
--
--   gan examples/ring_gan.lua [--steps 3000] [--out ring.png]
-- Writes a scatter plot: real points in green, generated points in red.
local gan = require "gan"
local nn = gan.nn

local opts = gan.cli.parse({
  {"steps", 3000, "training steps", min = 1},
  {"batch", 256, "points per batch", min = 2},
  {"out", "out/ring.png", "scatter plot PNG"},
  {"seed", 1, "random seed", min = 0},
}, arg or {}, "examples/ring_gan.lua")
gan.seed(opts.seed)

local modes, radius, std = 8, 2.0, 0.05
local B, Z, H = opts.batch, 2, 128

-- A batch from the ring: B points, each near one of the 8 centres.
local function ring_batch()
  local pts, noise = {}, gan.randn(B, 2):totable()
  for i = 1, B do
    local a = 2 * math.pi * (math.random(modes) - 1) / modes
    pts[i] = {radius * math.cos(a) + std * noise[i][1], radius * math.sin(a) + std * noise[i][2]}
  end
  return gan.tensor(pts)
end
math.randomseed(opts.seed)

local G = nn.Sequential(nn.Linear(Z, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(),
                        nn.Linear(H, 2))                                    -- (B, 2)
local D = nn.Sequential(nn.Linear(2, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(),
                        nn.Linear(H, 1))                                    -- (B, 1) logit
local loss = nn.BCEWithLogits()
local g_opt = gan.optim.Adam(G:parameters(), {lr = 1e-3, beta1 = 0.5})
local d_opt = gan.optim.Adam(D:parameters(), {lr = 1e-3, beta1 = 0.5})
local ones, zeros, z = gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, Z)

local function d_step(real)
  D:zero_grad()
  local l_real = loss:forward(D:forward(real), ones)
  D:backward(real, loss:backward(), false)
  local fake = G:forward(z:normal())
  local l_fake = loss:forward(D:forward(fake), zeros)
  D:backward(fake, loss:backward(), false)
  d_opt:step()
  return l_real + l_fake
end

local function g_step()
  G:zero_grad()
  local fake = G:forward(z:normal())
  local l = loss:forward(D:forward(fake), ones)
  G:backward(z, D:backward_input(fake, loss:backward()), false)
  g_opt:step()
  return l
end

for step = 1, opts.steps do
  local dl = d_step(ring_batch())
  local gl = g_step()
  if step % (opts.steps // 5) == 0 then
    print(("step %5d  D %.3f  G %.3f"):format(step, dl, gl))
  end
end

-- The scatter plot, drawn into a (3, S, S) image: white, real green, fake red.
local S, extent = 256, 3.0
local img = {{}, {}, {}}
for c = 1, 3 do
  for y = 1, S do
    local row = {}
    for x = 1, S do row[x] = 1 end
    img[c][y] = row
  end
end
local function plot(points, r, g, b)
  for _, p in ipairs(points) do
    local x = math.floor((p[1] + extent) / (2 * extent) * S) + 1
    local y = math.floor((extent - p[2]) / (2 * extent) * S) + 1
    for dy = -1, 1 do
      for dx = -1, 1 do
        local xx, yy = x + dx, y + dy
        if xx >= 1 and xx <= S and yy >= 1 and yy <= S then
          img[1][yy][xx], img[2][yy][xx], img[3][yy][xx] = r, g, b
        end
      end
    end
  end
end
plot(ring_batch():totable(), 0.1, 0.6, 0.1)
local fake = G:forward(z:normal()):totable()
plot(fake, 0.85, 0.1, 0.1)

-- How many modes does G cover?  A mode is hit when a generated point lies
-- within 4 std of its centre.
local hit = {}
for _, p in ipairs(fake) do
  for k = 0, modes - 1 do
    local a = 2 * math.pi * k / modes
    if (p[1] - radius * math.cos(a)) ^ 2 + (p[2] - radius * math.sin(a)) ^ 2 < (4 * std) ^ 2 then
      hit[k] = true
    end
  end
end
local covered = 0
for _ in pairs(hit) do covered = covered + 1 end

local dir = opts.out:match("^(.*)/[^/]*$")
if dir then gan.train.mkdir(dir) end
gan.images.save_grid(gan.tensor{img}, opts.out, {cols = 1})
print(("modes covered: %d of %d; plot in %s"):format(covered, modes, opts.out))
return covered
