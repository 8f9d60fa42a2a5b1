-- bench/seed_model.lua: the seed's dense G and D (scripts/strawberry.lua) at
-- S x S, without dropout, for the checks that compare runs step by step
-- (gpu_steps.lua, sensitivity.lua).  Loaded with dofile; returns
-- function(S, Z) -> G, D.
local nn = require("gan").nn
return function(S, Z)
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
