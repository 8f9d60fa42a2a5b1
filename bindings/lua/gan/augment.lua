-- gan/augment.lua: data augmentation for small data sets.
--
--   gan.augment.flip(x)            -> x, each image flipped left-right with
--                                     probability 1/2, in place
--   local T = gan.augment.Augment{flip = false, translate = 0.125}
--   y = T:forward(x)               -> a random shift of each image by up to
--                                     translate * size pixels, zero-filled
--   gx = T:backward(x, gy)         -> the gradient through the same shifts
--
-- Augment is DiffAugment's translation (Zhao et al., "Differentiable
-- augmentation for data-efficient GAN training", NeurIPS 2020): applied to
-- the real and the fake batches alike before D, and differentiable, so the
-- G step's gradient flows back through it to G.  Each forward draws new
-- shifts (and flips, if asked) from the gan generator and remembers them
-- for the backward.  In evaluation mode (T:evaluate()) it is the identity.
-- Flips and shifts are integers: no interpolation, exact adjoints.
local gan = require "gan"
local nn = require "gan.nn"
local C = gan.C

local augment = {}

local function check_images(x, fname)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to '%s' (tensor expected, got %s)"):format(fname, type(x)), 3)
  end
  if x:dim() ~= 4 then
    error(("%s: images (batch, channels, height, width) expected, not %s"):format(
      fname, nn.shape_str(x)), 3)
  end
end

-- (B, 3) parameters on the cpu, reused while B stays the same
local function params_for(buf, b)
  if buf and buf:size(1) == b then return buf end
  return gan.empty(b, 3, "cpu")
end

local flip_params = setmetatable({}, {__mode = "k"}) -- per tensor, reused

-- Flips each image of x left-right with probability 1/2, in place.
function augment.flip(x)
  check_images(x, "flip")
  local p = params_for(flip_params[x], x:size(1))
  flip_params[x] = p
  C.augment_params(p, true, 0)
  C.augment(x, x, p, false)
  return x
end

---------------------------------------------------------------------------
-- Augment{flip = false, translate = 0}: a module
---------------------------------------------------------------------------
local Augment = nn._class "Augment"

function Augment:init(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    nn._arg_error(("bad argument #1 to 'Augment' (options table expected, got %s)"):format(
      type(opts)))
  end
  local t = opts.translate or 0
  if type(t) ~= "number" or t < 0 or t > 0.5 then
    nn._arg_error(("bad option 'translate' to 'Augment' (a fraction in [0, 0.5] expected, "
                   .. "got %s)"):format(tostring(t)))
  end
  self.flip, self.translate = opts.flip == true, t
end

function Augment:__tostring()
  return ("nn.Augment(flip %s, translate %g)"):format(tostring(self.flip), self.translate)
end

function Augment:describe()
  return {"Augment", {flip = self.flip, translate = self.translate}}
end

-- DiffAugment's shift: int(size * ratio + 0.5) pixels at most
function Augment:max_shift(x)
  return math.floor(math.min(x:size(3), x:size(4)) * self.translate + 0.5)
end

function Augment:forward(x)
  check_images(x, "forward")
  local shift = self:max_shift(x)
  self.identity = not self.training or (not self.flip and shift == 0)
  if self.identity then
    self.output = x
    return x
  end
  self.params = params_for(self.params, x:size(1))
  C.augment_params(self.params, self.flip, shift)
  self.output = nn._like(self.output ~= x and self.output or nil, x)
  C.augment(self.output, x, self.params, false)
  return self.output
end

function Augment:backward(x, g, need_input_grad)
  check_images(x, "backward")
  if not self.output then error("Augment: backward before forward", 2) end
  if not gan.is_tensor(g) or g:numel() ~= x:numel() then
    error("Augment: the gradient must have the input's shape", 2)
  end
  if need_input_grad == false then return nil end
  if self.identity then
    self.grad_input = g
    return g
  end
  self.grad_input = nn._like(self.grad_input ~= g and self.grad_input or nil, x)
  C.augment(self.grad_input, g:dim() == 4 and g or g:view(x:shape()), self.params, true)
  return self.grad_input
end

augment.Augment = Augment

return augment
