-- gan/nn.lua: layers and losses, the way torch7's nn spells them.
--
-- Every module has
--   m:forward(x)                 -> output (a buffer the module owns)
--   m:backward(x, grad_out)      -> grad_input; also ACCUMULATES (+=) the
--                                   gradients of the parameters
--   m:backward_input(x, grad_out)-> grad_input only: parameters untouched.
--                                   How the G step goes through a frozen D,
--                                   without D's weight-gradient products.
--   m:parameters()               -> list of {name=, value=, grad=}
--   m:zero_grad(), m:train(), m:evaluate()
-- backward(x, g, false) skips the input gradient (the first layer of D in
-- the D step: nobody needs the gradient with respect to the images).
--
-- Buffers (outputs, gradients) are allocated on the first call and reused
-- while the batch size stays the same, so a training step allocates no
-- tensor.  Gradients are zeroed only by zero_grad: call it before each
-- backward pass whose gradients you want alone.  Linear's and BatchNorm's
-- zero_grad write nothing: they mark the gradients zero (t:zero_later()),
-- and the next backward overwrites them instead of adding to a pass of
-- zeros.  Anything that reads them before (an optimizer,
-- p.grad:totable(), ...) sees zeros.
local gan = require "gan"
local C = gan.C

local nn = {}

-- Returns buf if it already is a tensor of shape (d1[, d2[, d3[, d4]]]) on
-- the device, else a new one.  The dimensions are arguments, not a table, so
-- that the check allocates nothing: a training step creates no Lua garbage
-- here.
local function buffer(buf, device, d1, d2, d3, d4)
  local n = d4 and 4 or d3 and 3 or d2 and 2 or 1
  if buf and buf:dim() == n and buf:size(1) == d1 and (n < 2 or buf:size(2) == d2)
     and (n < 3 or buf:size(3) == d3) and (n < 4 or buf:size(4) == d4)
     and buf:device() == device then
    return buf
  end
  return gan.empty({d1, d2, d3, d4}, device)
end
nn._buffer = buffer

-- A buffer of the same shape as tensor x.
local function like(buf, x)
  if buf and buf:device() == x:device() and buf:dim() == x:dim() and buf:numel() == x:numel() then
    local same = true
    for i = 1, x:dim() do
      if buf:size(i) ~= x:size(i) then same = false break end
    end
    if same then return buf end
  end
  return gan.empty(x:shape(), x:device())
end
nn._like = like

local function check_tensor(x, i, fname)
  if not gan.is_tensor(x) then
    error(("bad argument #%d to '%s' (tensor expected, got %s)"):format(i, fname, type(x)), 3)
  end
end

local function shape_str(t)
  return table.concat(t:shape(), "x")
end
nn.shape_str = shape_str

-- The module must have run forward on a batch of x's size.
local function check_backward(self, x, g, fname)
  check_tensor(x, 1, fname)
  check_tensor(g, 2, fname)
  if not self.output then
    error(("%s: backward before forward"):format(self.name), 3)
  end
  if g:numel() ~= self.output:numel() then
    error(("%s: gradient is %s but the output of the last forward is %s"):format(
      self.name, shape_str(g), shape_str(self.output)), 3)
  end
end

---------------------------------------------------------------------------
-- Module: what every layer shares
---------------------------------------------------------------------------
local Module = {}
Module.__index = Module
nn.Module = Module

-- One shared, read-only empty list: modules without parameters allocate
-- nothing when a container zeroes or lists them.
local NO_PARAMS = setmetatable({}, {__newindex = function()
  error("the parameter list of a module without parameters is read-only", 2)
end})
function Module:parameters() return NO_PARAMS end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad:zero() end
  return self
end

function Module:train() self.training = true return self end
function Module:evaluate() self.training = false return self end

function Module:__tostring() return "nn." .. self.name end

-- Modules without parameters: backward_input is backward.
function Module:backward_input(x, g) return self:backward(x, g, true) end

-- A constructor's bad argument: the error points at the first caller
-- outside gan's own Lua files, however deep the check runs (a subclass's
-- init, a helper, a Sequential rebuilt from a checkpoint), and carries no
-- position when that caller is C (pcall): never a line of gan's own.
local gan_files = debug.getinfo(1, "S").source:match("^(.*[/\\])nn%.lua$")
local function arg_error(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil then level = 0 break end
    if not (gan_files and info.source:sub(1, #gan_files) == gan_files) then break end
    level = level + 1
  end
  error(msg, level)
end
nn._arg_error = arg_error

local function check_arg(ok, i, fname, what)
  if not ok then arg_error(("bad argument #%d to '%s' (%s)"):format(i, fname, what)) end
end
nn._check_arg = check_arg

-- Defines a module class: nn.Name(...) calls init.

local function class(name, parent)
  local cls = setmetatable({}, {__index = parent or Module})
  cls.__index = cls
  cls.__tostring = Module.__tostring
  cls.name = name
  setmetatable(cls, {
    __index = parent or Module,
    __call = function(_, ...)
      local self = setmetatable({training = true, name = name}, cls)
      self:init(...)
      return self
    end,
  })
  nn[name] = cls
  return cls
end

---------------------------------------------------------------------------
-- Linear: y = x W^T + b, W (out, in), Keras's glorot_uniform initialisation
---------------------------------------------------------------------------
local Linear = class "Linear"

function Linear:init(n_in, n_out, opts)
  check_arg(math.type(n_in) == "integer" and n_in > 0, 1, "Linear", "positive integer expected")
  check_arg(math.type(n_out) == "integer" and n_out > 0, 2, "Linear", "positive integer expected")
  opts = opts or {}
  local device = opts.device or gan.device()
  self.n_in, self.n_out = n_in, n_out
  -- Glorot and Bengio 2010: U(-l, l), l = sqrt(6 / (fan_in + fan_out))
  local limit = math.sqrt(6 / (n_in + n_out))
  self.weight = gan.empty(n_out, n_in, device):uniform(-limit, limit)
  self.grad_weight = gan.zeros(n_out, n_in, device)
  if opts.bias ~= false then
    self.bias = gan.zeros(n_out, device)
    self.grad_bias = gan.zeros(n_out, device)
  end
end

function Linear:__tostring()
  return ("nn.Linear(%d -> %d)"):format(self.n_in, self.n_out)
end

-- zero_grad of a module with a weight and an optional bias (Linear, and
-- Conv2d and ConvTranspose2d in gan/conv.lua): no parameter list, so no
-- garbage per step.  The zeros are put off (t:zero_later()): Linear's
-- backward overwrites the gradients whole, which saves writing zeros over
-- them and reading those zeros back, per step; the convolutions' backward
-- writes the zeros first, as any other reader does.
local function zero_weight_bias(self)
  self.grad_weight:zero_later()
  if self.grad_bias then self.grad_bias:zero_later() end
  return self
end
nn._zero_weight_bias = zero_weight_bias
Linear.zero_grad = zero_weight_bias

function Linear:parameters()
  local p = {{name = "weight", value = self.weight, grad = self.grad_weight}}
  if self.bias then p[2] = {name = "bias", value = self.bias, grad = self.grad_bias} end
  return p
end

function Linear:forward(x)
  check_tensor(x, 1, "forward")
  if x == self.output then self.output = nil end -- m:forward(m.output): not in place
  self.output = buffer(self.output, self.weight:device(), x:size(1), self.n_out)
  C.linear_forward(self.output, x, self.weight, self.bias)
  return self.output
end

-- forward, then act:forward(self.output) in one call, which a backend may
-- do in one pass after the product (Sequential calls it); returns act's output
function Linear:forward_act(x, act)
  check_tensor(x, 1, "forward")
  if x == self.output then self.output = nil end
  self.output = buffer(self.output, self.weight:device(), x:size(1), self.n_out)
  act.output = like(act.output, self.output)
  C.linear_act_forward(self.output, act.output, x, self.weight, self.bias, act.act_kind,
                       act.alpha)
  return act.output
end

-- The buffer for the input gradient of a backward fed g: never g's own
-- memory (m:backward(x, m.grad_input) takes a new one); nil when not
-- wanted (need == false).
local function input_grad(self, x, g, need)
  if g == self.grad_input then self.grad_input = nil end
  if need == false then return nil end
  self.grad_input = like(self.grad_input, x)
  return self.grad_input
end
nn._input_grad = input_grad

function Linear:backward(x, g, need_input_grad)
  check_backward(self, x, g, "backward")
  local gi = input_grad(self, x, g, need_input_grad)
  C.linear_backward(gi, self.grad_weight, self.grad_bias, g, x, self.weight)
  return gi
end

-- act:backward(z, g), then backward(x, act.grad_input), in one call, which
-- a backend may do with one pass fewer over act.grad_input (it sums the
-- bias gradient as it writes it); z is act's input, this layer's output.
-- Sequential calls it, having checked act's arguments (a failure's message
-- begins with the op that failed, "activation backward" for act's part).
function Linear:backward_act(x, g, act, z, need_input_grad)
  act.grad_input = like(act.grad_input, z)
  local dz = act.grad_input
  check_backward(self, x, dz, "backward")
  local gi = input_grad(self, x, dz, need_input_grad)
  C.linear_act_backward(act.act_kind, act.alpha, dz, g, z, act.output, gi, self.grad_weight,
                        self.grad_bias, x, self.weight)
  return gi
end

function Linear:backward_input(x, g)
  check_backward(self, x, g, "backward_input")
  local gi = input_grad(self, x, g)
  C.linear_backward(gi, nil, nil, g, x, self.weight)
  return gi
end

---------------------------------------------------------------------------
-- Pointwise activations
---------------------------------------------------------------------------
local function activation(name, kind, default_alpha)
  local cls = class(name)
  function cls:init(alpha)
    alpha = alpha or default_alpha or 0
    check_arg(type(alpha) == "number" and alpha == alpha and math.abs(alpha) < math.huge, 1,
              name, "a finite number expected")
    self.alpha = alpha
  end
  function cls:forward(x)
    check_tensor(x, 1, "forward")
    self.output = like(self.output, x)
    C.act_forward(kind, self.alpha, self.output, x)
    return self.output
  end
  function cls:backward(x, g, need_input_grad)
    check_backward(self, x, g, "backward")
    if need_input_grad == false then return nil end
    self.grad_input = like(self.grad_input, x)
    C.act_backward(kind, self.alpha, self.grad_input, g, x, self.output)
    return self.grad_input
  end
  -- what a Linear before it may apply in its own call, while forward is this
  -- one (Sequential)
  cls.act_kind, cls.fusable_forward, cls.fusable_backward = kind, cls.forward, cls.backward
  return cls
end

activation("ReLU", "relu")
activation("Sigmoid", "sigmoid")
activation("Tanh", "tanh")
activation("Identity", "identity")
local LeakyReLU = activation("LeakyReLU", "leaky_relu", 0.01)
function LeakyReLU:__tostring() return ("nn.LeakyReLU(%g)"):format(self.alpha) end

---------------------------------------------------------------------------
-- Dropout(p): inverted dropout in training, identity in evaluation
---------------------------------------------------------------------------
local Dropout = class "Dropout"

function Dropout:init(p)
  p = p or 0.5
  check_arg(type(p) == "number" and p >= 0 and p < 1, 1, "Dropout", "p in [0, 1) expected")
  self.p = p
end

function Dropout:__tostring() return ("nn.Dropout(%g)"):format(self.p) end

function Dropout:forward(x)
  check_tensor(x, 1, "forward")
  self.output = like(self.output, x)
  if self.training and self.p > 0 then
    self.mask = like(self.mask, x)
    C.dropout_forward(self.output, self.mask, x, self.p)
    self.masked = true
  else
    self.output:copy(x)
    self.masked = false
  end
  return self.output
end

function Dropout:backward(x, g, need_input_grad)
  check_backward(self, x, g, "backward")
  if need_input_grad == false then return nil end
  self.grad_input = like(self.grad_input, x)
  if self.masked then
    C.dropout_backward(self.grad_input, g, self.mask)
  else
    self.grad_input:copy(g)
  end
  return self.grad_input
end

---------------------------------------------------------------------------
-- BatchNorm(n, {momentum=0.99, eps=1e-3}): Keras's defaults and convention
-- (running = momentum * running + (1 - momentum) * batch).  Works on (B, C)
-- and on (B, C, H, W), per channel C.
---------------------------------------------------------------------------
local BatchNorm = class "BatchNorm"

-- The checks and the tensors of BatchNorm and of its subclasses.
-- 'defaults': momentum and eps when opts has none.
function BatchNorm:_setup(n, opts, defaults)
  local fname = self.name
  check_arg(math.type(n) == "integer" and n > 0, 1, fname, "positive integer expected")
  check_arg(opts == nil or type(opts) == "table", 2, fname,
            "options table expected, got " .. type(opts))
  opts = opts or {}
  local device = opts.device or gan.device()
  self.n = n
  self.momentum = opts.momentum or defaults.momentum
  self.eps = opts.eps or defaults.eps
  check_arg(type(self.momentum) == "number" and self.momentum >= 0 and self.momentum <= 1,
            2, fname, ("option 'momentum' must be a number in [0, 1], not %s"):format(
              self.momentum ~= self.momentum and "NaN" or tostring(self.momentum)))
  check_arg(type(self.eps) == "number" and self.eps > 0 and self.eps < math.huge, 2,
            fname, ("option 'eps' must be a positive finite number, not %s"):format(
              self.eps ~= self.eps and "NaN" or tostring(self.eps)))
  self.gamma = gan.ones(n, device)
  self.beta = gan.zeros(n, device)
  self.grad_gamma = gan.zeros(n, device)
  self.grad_beta = gan.zeros(n, device)
  self.running_mean = gan.zeros(n, device)
  self.running_var = gan.ones(n, device)
  self.mean = gan.zeros(n, device)
  self.rstd = gan.zeros(n, device)
end

function BatchNorm:init(n, opts)
  self:_setup(n, opts, {momentum = 0.99, eps = 1e-3})
end

function BatchNorm:__tostring()
  return ("nn.BatchNorm(%d, momentum %g, eps %g)"):format(self.n, self.momentum, self.eps)
end

-- the zeros put off, as Linear's are: the backward overwrites them
function BatchNorm:zero_grad()
  self.grad_gamma:zero_later()
  self.grad_beta:zero_later()
  return self
end

function BatchNorm:parameters()
  return {{name = "gamma", value = self.gamma, grad = self.grad_gamma},
          {name = "beta", value = self.beta, grad = self.grad_beta}}
end

-- Running statistics: not trained, but saved with the model.
function BatchNorm:buffers()
  return {{name = "running_mean", value = self.running_mean},
          {name = "running_var", value = self.running_var}}
end

function BatchNorm:forward(x)
  check_tensor(x, 1, "forward")
  self.output = like(self.output, x)
  self.forward_training = self.training
  C.batchnorm_forward(self.output, self.mean, self.rstd, self.running_mean,
                      self.running_var, x, self.gamma, self.beta, self.momentum,
                      self.eps, self.training)
  return self.output
end

function BatchNorm:backward(x, g, need_input_grad)
  check_backward(self, x, g, "backward")
  local gi = nil
  if need_input_grad ~= false then
    self.grad_input = like(self.grad_input, x)
    gi = self.grad_input
  end
  C.batchnorm_backward(gi, self.grad_gamma, self.grad_beta, g, x, self.gamma,
                       self.mean, self.rstd, self.forward_training)
  return gi
end

function BatchNorm:backward_input(x, g)
  check_backward(self, x, g, "backward_input")
  self.grad_input = like(self.grad_input, x)
  C.batchnorm_backward(self.grad_input, nil, nil, g, x, self.gamma, self.mean,
                       self.rstd, self.forward_training)
  return self.grad_input
end

---------------------------------------------------------------------------
-- Sequential(m1, m2, ...): a chain.  Errors name the failing child.
---------------------------------------------------------------------------
local Sequential = class "Sequential"

function Sequential:init(...)
  self.modules = {}
  for i = 1, select("#", ...) do self:add(select(i, ...)) end
end

function Sequential:add(m)
  if type(m) ~= "table" or type(m.forward) ~= "function" then
    error(("bad argument to 'Sequential' (module %d is a %s, not a module)"):format(
      #self.modules + 1, type(m)), 2)
  end
  self.modules[#self.modules + 1] = m
  return self
end

function Sequential:__tostring()
  local lines = {"nn.Sequential {"}
  for i, m in ipairs(self.modules) do
    lines[#lines + 1] = ("  (%d) %s"):format(i, tostring(m):gsub("\n", "\n  "))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

-- Runs f(...) and prefixes any error with the child's place.
local function in_child(self, i, ok, ...)
  if ok then return ... end
  local msg = ...
  error(("in module %d (%s) of Sequential: %s"):format(i, self.modules[i].name,
                                                       tostring(msg)), 0)
end

-- A Linear with a bias followed by an activation (ReLU, LeakyReLU, Sigmoid,
-- Tanh) runs as one call: the backend adds the bias and applies the
-- activation in one pass after the product.  The two modules' outputs are
-- what their own forwards would give.  Only while both forwards are gan's
-- (not replaced on the class or the instance, by a hook say), and while the
-- activation's buffer is live and apart from the input (a chain fed its own
-- output, a module used twice): otherwise each runs its own forward, as
-- before, and its own errors name it.
local linear_forward = Linear.forward
local function fuses(m, nxt, x)
  return nxt ~= nil and m.forward == linear_forward and m.bias ~= nil
    and type(nxt.act_kind) == "string" and nxt.act_kind ~= "identity"
    and nxt.forward == nxt.fusable_forward and type(nxt.alpha) == "number"
    and (nxt.output == nil or C.live(nxt.output))
    and not C.overlaps(nxt.output, x) and not C.overlaps(nxt.output, m.output)
end

function Sequential:forward(x)
  check_tensor(x, 1, "forward")
  self.inputs = self.inputs or {}
  local mods, i = self.modules, 1
  while i <= #mods do
    local m, nxt = mods[i], mods[i + 1]
    self.inputs[i] = x
    if fuses(m, nxt, x) then
      x = in_child(self, i, pcall(m.forward_act, m, x, nxt))
      self.inputs[i + 1] = m.output
      i = i + 2
    else
      x = in_child(self, i, pcall(m.forward, m, x))
      i = i + 1
    end
  end
  self.output = x
  return x
end

-- Backward, a Linear with a bias and the activation after it run as one
-- call too (Linear:backward_act): the bias gradient is summed as the
-- activation's gradient is written.  Under the same terms as forward (both
-- backwards gan's own, every tensor live), and only where the result is
-- the one the two backwards give in turn: the Linear's gradients apart from
-- what the activation's backward reads.  backward_input has no bias
-- gradient to sum, so it does not fuse.
local linear_backward = Linear.backward
local function live_or_nil(t) return t == nil or C.live(t) end
local function fuses_back(m, act, z, g)
  local gb = m.grad_bias
  return m.backward == linear_backward and gb ~= nil and C.live(gb)
    and C.live(m.grad_weight) and type(act.act_kind) == "string"
    and act.backward == act.fusable_backward and type(act.alpha) == "number"
    and C.live(z) and C.live(g) and C.live(act.output) and live_or_nil(act.grad_input)
    and live_or_nil(m.grad_input) and not C.overlaps(gb, g) and not C.overlaps(gb, z)
    and not C.overlaps(gb, act.output)
end

-- the activation's own checks, their errors as its backward gives them
local function check_act_backward(act, z, g) check_backward(act, z, g, "backward") end

local function seq_backward(self, x, g, method, need_input_grad)
  check_backward(self, x, g, method)
  local mods, i = self.modules, #self.modules
  while i >= 1 do
    local m = mods[i]
    local lin, z = mods[i - 1], self.inputs[i]
    if method == "backward" and lin ~= nil and fuses_back(lin, m, z, g) then
      in_child(self, i, pcall(check_act_backward, m, z, g))
      local need = i > 2 or need_input_grad ~= false
      local ok, r = pcall(lin.backward_act, lin, self.inputs[i - 1], g, m, z, need)
      if not ok and type(r) == "string" and r:find("^activation backward") then
        in_child(self, i, ok, r)
      end
      g = in_child(self, i - 1, ok, r)
      i = i - 2
    else
      local need = i > 1 or need_input_grad ~= false
      if method == "backward_input" then
        g = in_child(self, i, pcall(m.backward_input, m, self.inputs[i], g))
      else
        g = in_child(self, i, pcall(m.backward, m, self.inputs[i], g, need))
      end
      i = i - 1
    end
  end
  self.grad_input = g
  return g
end

function Sequential:backward(x, g, need_input_grad)
  return seq_backward(self, x, g, "backward", need_input_grad)
end

function Sequential:backward_input(x, g)
  return seq_backward(self, x, g, "backward_input")
end

function Sequential:zero_grad()
  for _, m in ipairs(self.modules) do m:zero_grad() end
  return self
end

-- Parameters named by place: "3.weight" is module 3's weight.
function Sequential:parameters()
  local list = {}
  for i, m in ipairs(self.modules) do
    for _, p in ipairs(m:parameters()) do
      list[#list + 1] = {name = i .. "." .. p.name, value = p.value, grad = p.grad}
    end
  end
  return list
end

function Sequential:buffers()
  local list = {}
  for i, m in ipairs(self.modules) do
    for _, b in ipairs(m.buffers and m:buffers() or {}) do
      list[#list + 1] = {name = i .. "." .. b.name, value = b.value}
    end
  end
  return list
end

function Sequential:train()
  self.training = true
  for _, m in ipairs(self.modules) do m:train() end
  return self
end

function Sequential:evaluate()
  self.training = false
  for _, m in ipairs(self.modules) do m:evaluate() end
  return self
end

---------------------------------------------------------------------------
-- Losses: forward(pred, target) -> number; backward() -> d loss / d pred;
-- forward(pred, target, false) -> the loss as a 1-element tensor, unread
---------------------------------------------------------------------------
-- Whether a and b have the same dimensions (without building a string: a
-- criterion checks at every step, which allocates nothing).
local function same_shape(a, b)
  local n = a:dim()
  if b:dim() ~= n then return false end
  for i = 1, n do
    if a:size(i) ~= b:size(i) then return false end
  end
  return true
end

local function criterion(name, logits)
  local cls = {}
  cls.__index = cls
  cls.__tostring = function() return "nn." .. name end
  -- The loss as a number, which waits for the GPU.  read = false leaves it
  -- on the device and returns the criterion's 1-element tensor, which the
  -- next forward overwrites; read = a 1-element tensor writes it there and
  -- returns that.  Neither waits (gan.reader reads them later).
  function cls:forward(pred, target, read)
    check_tensor(pred, 1, "forward")
    check_tensor(target, 2, "forward")
    if not same_shape(pred, target) then
      error(("%s: prediction is %s but target is %s (shapes must match)"):format(name,
        shape_str(pred), shape_str(target)), 2)
    end
    if read ~= nil and read ~= false and not gan.is_tensor(read) then
      error(("bad argument #3 to 'forward' (a 1-element tensor for the loss, false or "
        .. "nothing expected, got %s)"):format(type(read)), 2)
    end
    if not self.loss_buf or self.loss_buf:device() ~= pred:device() then
      self.loss_buf = gan.empty(1, pred:device())
    end
    self.pred, self.target = pred, target
    if gan.is_tensor(read) then
      C.bce_forward(read, pred, target, logits, false)
      self.loss = nil
      return read
    elseif read == false then
      C.bce_forward(self.loss_buf, pred, target, logits, false)
      self.loss = nil
      return self.loss_buf
    end
    self.loss = C.bce_forward(self.loss_buf, pred, target, logits)
    return self.loss
  end
  function cls:backward()
    if not self.pred then error(name .. ": backward before forward", 2) end
    self.grad_input = like(self.grad_input, self.pred)
    C.bce_backward(self.grad_input, self.pred, self.target, logits)
    return self.grad_input
  end
  nn[name] = function() return setmetatable({name = name}, cls) end
end

criterion("BCE", false)
criterion("BCEWithLogits", true)

-- for gan/conv.lua and gan/augment.lua, which add classes to nn
nn._class = class

return nn
