-- gan/init.lua: completes the module table that luaopen_gan made in C.
--
-- The C half already put there: tensors (gan.tensor, gan.zeros, gan.randn,
-- ...), gan.device, gan.seed, gan.memory and gan.C (the raw ops).  This file
-- attaches the Lua half: gan.nn (modules and losses), gan.optim, gan.images,
-- gan.data, gan.cli (script options), gan.progress (the progress bar),
-- gan.checkpoint with gan.save / gan.load, gan.report (the run's HTML page)
-- and gan.train (what training scripts share).
local gan = package.loaded.gan

local tensor_mt = debug.getregistry()["gan.Tensor"]

-- gan.is_tensor(x): is x a tensor (freed or not)?
function gan.is_tensor(x)
  return getmetatable(x) == tensor_mt
end

-- gan.message(err): an error's text as a user reads it, without the
-- "file:line: " that error() put in front of it
function gan.message(err)
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

gan.nn = require "gan.nn"
require "gan.conv"             -- adds Conv2d, ConvTranspose2d, BatchNorm2d, Reshape, Flatten to gan.nn
gan.optim = require "gan.optim"
gan.images = require "gan.images"
gan.data = require "gan.data"
gan.cli = require "gan.cli"
gan.progress = require "gan.progress"
gan.checkpoint = require "gan.checkpoint"
gan.report = require "gan.report"
gan.train = require "gan.train"

-- gan.save(path, {models = {G = G, D = D}, optims = ..., noise = ..., ...})
-- gan.load(path) -> {G =, D =, noise =, epoch =, step =, opts =, ...}
gan.save = gan.checkpoint.save
gan.load = gan.checkpoint.load
gan.metrics = require "gan.metrics"
gan.augment = require "gan.augment"

return gan
