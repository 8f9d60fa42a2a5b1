-- gan/optim.lua: optimizers over the parameter lists of gan.nn modules.
--
--   local opt = gan.optim.Adam(G:parameters(), {lr = 2e-4, beta1 = 0.5})
--   G:zero_grad(); ...backward...; opt:step()
--
-- Adam's defaults are Keras's (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7,
-- and Keras's form of the update), the stack of the program we reproduce.
-- form = "paper" takes Algorithm 1 of the paper instead, as PyTorch does:
-- the two differ only in where eps is added (core/adam.c), which matters in
-- the first steps of parameters with small gradients.  The moments live on
-- the parameters' device, and one step is one call into the backend for all
-- of them (one fused loop per tensor on the CPU, one launch on CUDA).
local gan = require "gan"

local optim = {}

local Adam = {}
Adam.__index = Adam

local function check_number(opts, key, lo, hi, level)
  local v = opts[key]
  if type(v) ~= "number" or not (v >= lo and v <= hi) or v == math.huge then
    error(("Adam: option '%s' must be a finite number in [%g, %g], not %s"):format(
      key, lo, hi, v ~= v and "NaN" or tostring(v)), level + 1)
  end
end

-- The options, checked when the optimizer is made and at each step (a
-- script may set opt.lr between steps).  No garbage unless one is wrong.
local function check_options(self, level)
  check_number(self, "lr", 0, math.huge, level + 1)
  check_number(self, "beta1", 0, 0.999999, level + 1)
  check_number(self, "beta2", 0, 0.999999, level + 1)
  check_number(self, "eps", 0, 1, level + 1)
  check_number(self, "weight_decay", 0, math.huge, level + 1)
end

function optim.Adam(params, opts)
  if type(params) ~= "table" then
    error("bad argument #1 to 'Adam' (parameter list expected, e.g. model:parameters())", 2)
  end
  opts = opts or {}
  local self = setmetatable({
    lr = opts.lr or 1e-3,
    beta1 = opts.beta1 or 0.9,
    beta2 = opts.beta2 or 0.999,
    eps = opts.eps or 1e-7,
    weight_decay = opts.weight_decay or 0,
    form = opts.form or "keras",
    t = 0,
    params = params,
    m = {}, v = {},
  }, Adam)
  check_options(self, 2)
  if self.form ~= "keras" and self.form ~= "paper" then
    error(("Adam: option 'form' must be \"keras\" or \"paper\", not %s"):format(
      tostring(self.form)), 2)
  end
  local values, grads = {}, {}
  for i, p in ipairs(params) do
    if not (gan.is_tensor(p.value) and gan.is_tensor(p.grad)) then
      error(("bad argument #1 to 'Adam' (entry %d has no value and grad tensors)"):format(i), 2)
    end
    values[i], grads[i] = p.value, p.grad
    self.m[i] = gan.zeros(p.value:shape(), p.value:device())
    self.v[i] = gan.zeros(p.value:shape(), p.value:device())
  end
  self.state = gan.C.adam(values, grads, self.m, self.v)
  return self
end

function Adam:step()
  check_options(self, 2)
  local t = self.t + 1 -- counted once the step is taken: a failed one is not
  self.state:step(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay, t,
                  self.form == "keras")
  self.t = t
end

function Adam:__tostring()
  return ("optim.Adam(lr %g, beta1 %g, beta2 %g, eps %g, %s form, %d tensors, step %d)"):format(
    self.lr, self.beta1, self.beta2, self.eps, self.form, #self.params, self.t)
end

return optim
