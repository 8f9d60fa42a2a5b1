-- gan/init.lua: completes the module table that luaopen_gan made in C.
--
-- The C half already put there: tensors (gan.tensor, gan.zeros, gan.randn,
-- ...), gan.device, gan.seed, gan.memory and gan.C (the raw ops).  This file
-- attaches the Lua half: gan.nn (modules and losses), gan.optim, gan.images,
-- gan.data, gan.cli (script options) and gan.progress (the progress bar).
local gan = package.loaded.gan

local tensor_mt = debug.getregistry()["gan.Tensor"]

-- gan.is_tensor(x): is x a tensor (freed or not)?
function gan.is_tensor(x)
  return getmetatable(x) == tensor_mt
end

gan.nn = require "gan.nn"
gan.optim = require "gan.optim"
gan.images = require "gan.images"
gan.data = require "gan.data"
gan.cli = require "gan.cli"
gan.progress = require "gan.progress"
gan.train = require "gan.train"

return gan
