-- bench/seed_model.lua: the seed's dense G and D (scripts/strawberry.lua) at
-- S x S, without dropout, and a GAN's training step, for the checks that
-- compare runs step by step (gpu_steps.lua, sensitivity.lua).  Loaded with
-- dofile; returns {model = function(S, Z) -> G, D, pair = ...}.
local gan = require "gan"
local nn = gan.nn
local M = {}

function M.model(S, Z)
  local function block(i, o)
    return nn.Sequential(nn.Linear(i, o), nn.LeakyReLU(0.2), nn.BatchNorm(o, {momentum = 0.8}))
  end
  local G = nn.Sequential(block(Z, 256), block(256, 512), block(512, 1024),
                          nn.Linear(1024, S * S * 3), nn.Sigmoid())
  local D = nn.Sequential(nn.Linear(S * S * 3, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 512),
                          nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                          nn.Linear(256, 1), nn.Sigmoid())
  return G, D
end

-- A GAN as scripts/strawberry*.lua trains it (D on a real then a fake
-- batch, then G through D frozen), Adam 2e-4/0.5 for both in 'form';
-- 'aug' (or nil) transforms the real batch.  Returns {G, D, go, dop, step},
-- where step(hook) takes one step and returns {D fake loss, G loss}; hook,
-- if given, sees the gradient D gives G before G's backward.
function M.pair(G, D, bce, real, Z, aug, form)
  local B = real:size(1)
  local r = {G = G, D = D}
  r.go = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5, form = form})
  r.dop = gan.optim.Adam(D:parameters(), {lr = 2e-4, beta1 = 0.5, form = form})
  local ones, zeros, z = gan.ones(B, 1), gan.zeros(B, 1), gan.empty(B, Z)
  function r.step(hook)
    D:zero_grad()
    local xr = aug and aug:forward(real) or real
    bce:forward(D:forward(xr), ones); D:backward(xr, bce:backward(), false); r.dop:step()
    local fake = G:forward(z:normal())
    D:zero_grad()
    local dl = bce:forward(D:forward(fake), zeros); D:backward(fake, bce:backward(), false)
    r.dop:step()
    G:zero_grad()
    fake = G:forward(z:normal())
    local gl = bce:forward(D:forward(fake), ones)
    local g = D:backward_input(fake, bce:backward())
    if hook then hook(g) end
    G:backward(z, g, false); r.go:step()
    return {dl, gl}
  end
  return r
end

return M
