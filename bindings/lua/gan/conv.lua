-- gan/conv.lua: convolutional layers, added to gan.nn.
--
--   nn.Conv2d(in, out, k, {stride = 1, padding = 0, bias = true})
--       (B, in, H, W) -> (B, out, (H + 2p - k) / s + 1, ...), weight (out, in, k, k)
--   nn.ConvTranspose2d(in, out, k, {stride = 1, padding = 0, output_padding = 0, bias = true})
--       (B, in, H, W) -> (B, out, (H - 1) s - 2p + k + output_padding, ...),
--       weight (in, out, k, k): the adjoint of Conv2d, PyTorch's layout
--   nn.BatchNorm2d(n, {momentum = 0.9, eps = 1e-5}): nn.BatchNorm per
--       channel of (B, n, H, W), with PyTorch's defaults (momentum 0.1 in
--       PyTorch's convention is 0.9 in Keras's, which nn.BatchNorm uses)
--   nn.Reshape(d1, d2, ...): (B, ...) -> (B, d1, d2, ...), a view
--   nn.Flatten(): (B, ...) -> (B, the product of the rest), a view
--
-- Weights start as in DCGAN (Radford et al. 2016, section 4): N(0, 0.02),
-- biases at 0, BatchNorm2d's gamma N(1, 0.02).  k may be a number or
-- {kh, kw}.  The modules follow gan/nn.lua's contract (forward, backward
-- accumulating parameter gradients, backward_input, buffers reused while
-- the shapes stay), and each has describe() -> {name, args...}, such that
-- nn[name](table.unpack(args)) builds the same layer again.
--
-- Each convolution owns its workspace (the im2col matrix of a block of
-- samples), allocated on the first step of each shape, never per step.  A
-- training step creates no Lua garbage either (spec/conv_spec.lua): no
-- shape tables, no strings, no new views.
local gan = require "gan"
local nn = require "gan.nn"
local C = gan.C

local class, buffer, shape_str = nn._class, nn._buffer, nn.shape_str
local arg_error, input_grad = nn._arg_error, nn._input_grad

-- The constructors' checks: the error points at the constructor's caller
-- (nn._arg_error).
local function positive(v, i, fname, what)
  if math.type(v) ~= "integer" or v < 1 then
    arg_error(("bad argument #%d to '%s' (%s: positive integer expected, got %s)"):format(
      i, fname, what, tostring(v)))
  end
  return v
end

local function check_input4(self, x, fname)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to '%s' (tensor expected, got %s)"):format(fname, type(x)), 3)
  end
  if x:dim() ~= 4 then
    error(("%s: input must be 4-d (batch, channels, height, width), not %s"):format(
      self.name, shape_str(x)), 3)
  end
end

local function check_grad(self, x, g, fname)
  check_input4(self, x, fname)
  if not gan.is_tensor(g) then
    error(("bad argument #2 to '%s' (tensor expected, got %s)"):format(fname, type(g)), 3)
  end
  if not self.output then error(("%s: backward before forward"):format(self.name), 3) end
  if g:numel() ~= self.output:numel() then
    error(("%s: gradient is %s but the output of the last forward is %s"):format(
      self.name, shape_str(g), shape_str(self.output)), 3)
  end
end

---------------------------------------------------------------------------
-- What Conv2d and ConvTranspose2d share
---------------------------------------------------------------------------
local function conv_init(self, fname, n_in, n_out, k, opts)
  positive(n_in, 1, fname, "input channels")
  positive(n_out, 2, fname, "output channels")
  local kh, kw
  if type(k) == "table" then kh, kw = k[1], k[2] else kh, kw = k, k end
  positive(kh, 3, fname, "kernel size")
  positive(kw, 3, fname, "kernel size")
  opts = opts or {}
  if type(opts) ~= "table" then
    arg_error(("bad argument #4 to '%s' (options table expected, got %s)"):format(fname,
                                                                                  type(opts)))
  end
  local stride, padding = opts.stride or 1, opts.padding or 0
  positive(stride, 4, fname, "stride")
  if math.type(padding) ~= "integer" or padding < 0 then
    arg_error(("bad argument #4 to '%s' (padding: integer >= 0 expected, got %s)"):format(
      fname, tostring(padding)))
  end
  self.n_in, self.n_out, self.kh, self.kw = n_in, n_out, kh, kw
  self.stride, self.padding = stride, padding
  self.has_bias = opts.bias ~= false
  self.device = opts.device or gan.device()
  return opts
end

local function conv_params(self)
  local p = {{name = "weight", value = self.weight, grad = self.grad_weight}}
  if self.bias then p[2] = {name = "bias", value = self.bias, grad = self.grad_bias} end
  return p
end

-- the kernel as describe() gives it: a number when square
local function kernel_arg(self)
  if self.kh == self.kw then return self.kh end
  return {self.kh, self.kw}
end

-- The workspace for output y and input x: the size the backend prefers,
-- kept while it is large enough (a smaller batch for a sample grid reuses
-- the training one).  Asked again only when y or x is another tensor than
-- last time (a tensor keeps its shape, and the buffers are reused).
local function workspace(self, y, x, transposed)
  if self.ws_y ~= y or self.ws_x ~= x then
    local batched = C.conv2d_workspace(y, x, self.weight, self.stride, self.padding, transposed)
    if batched > 0 and (not self.ws or self.ws:numel() < batched
                        or self.ws:device() ~= x:device()) then
      self.ws = gan.empty(batched, x:device())
    end
    self.ws_y, self.ws_x = y, x
  end
  return self.ws
end

---------------------------------------------------------------------------
-- Conv2d
---------------------------------------------------------------------------
local Conv2d = class "Conv2d"

function Conv2d:init(n_in, n_out, k, opts)
  opts = conv_init(self, "Conv2d", n_in, n_out, k, opts)
  self.weight = gan.empty(n_out, n_in, self.kh, self.kw, self.device):normal(0, opts.std or 0.02)
  self.grad_weight = gan.zeros(n_out, n_in, self.kh, self.kw, self.device)
  if self.has_bias then
    self.bias = gan.zeros(n_out, self.device)
    self.grad_bias = gan.zeros(n_out, self.device)
  end
end

function Conv2d:__tostring()
  return ("nn.Conv2d(%d -> %d, %dx%d, stride %d, padding %d%s)"):format(self.n_in,
    self.n_out, self.kh, self.kw, self.stride, self.padding, self.bias and "" or ", no bias")
end

function Conv2d:describe()
  return {"Conv2d", self.n_in, self.n_out, kernel_arg(self),
          {stride = self.stride, padding = self.padding, bias = self.bias ~= nil}}
end

Conv2d.parameters = conv_params
Conv2d.zero_grad = nn._zero_weight_bias

-- (H, W) -> the output's (OH, OW)
function Conv2d:output_size(h, w)
  return (h + 2 * self.padding - self.kh) // self.stride + 1,
         (w + 2 * self.padding - self.kw) // self.stride + 1
end

function Conv2d:forward(x)
  check_input4(self, x, "forward")
  local h, w = x:size(3), x:size(4)
  if h + 2 * self.padding < self.kh or w + 2 * self.padding < self.kw then
    error(("%s: input %s is smaller than the %dx%d kernel (padding %d)"):format(
      self.name, shape_str(x), self.kh, self.kw, self.padding), 2)
  end
  local oh, ow = self:output_size(h, w)
  if x == self.output then self.output = nil end -- not in place
  self.output = buffer(self.output, self.weight:device(), x:size(1), self.n_out, oh, ow)
  C.conv2d_forward(self.output, x, self.weight, self.bias, self.stride, self.padding,
                   workspace(self, self.output, x, false))
  return self.output
end

function Conv2d:backward(x, g, need_input_grad)
  check_grad(self, x, g, "backward")
  local gi = input_grad(self, x, g, need_input_grad)
  C.conv2d_backward(gi, self.grad_weight, self.grad_bias, g, x, self.weight, self.stride,
                    self.padding, workspace(self, g, x, false))
  return gi
end

function Conv2d:backward_input(x, g)
  check_grad(self, x, g, "backward_input")
  local gi = input_grad(self, x, g)
  C.conv2d_backward(gi, nil, nil, g, x, self.weight, self.stride, self.padding,
                    workspace(self, g, x, false))
  return gi
end

---------------------------------------------------------------------------
-- ConvTranspose2d
---------------------------------------------------------------------------
local ConvTranspose2d = class "ConvTranspose2d"

function ConvTranspose2d:init(n_in, n_out, k, opts)
  opts = conv_init(self, "ConvTranspose2d", n_in, n_out, k, opts)
  local op = opts.output_padding or 0
  if math.type(op) ~= "integer" or op < 0 or op >= self.stride then
    arg_error(("bad argument #4 to 'ConvTranspose2d' (output_padding: integer in 0..stride-1 "
               .. "expected, got %s)"):format(tostring(op)))
  end
  self.output_padding = op
  self.weight = gan.empty(n_in, n_out, self.kh, self.kw, self.device):normal(0, opts.std or 0.02)
  self.grad_weight = gan.zeros(n_in, n_out, self.kh, self.kw, self.device)
  if self.has_bias then
    self.bias = gan.zeros(n_out, self.device)
    self.grad_bias = gan.zeros(n_out, self.device)
  end
end

function ConvTranspose2d:__tostring()
  return ("nn.ConvTranspose2d(%d -> %d, %dx%d, stride %d, padding %d%s)"):format(self.n_in,
    self.n_out, self.kh, self.kw, self.stride, self.padding, self.bias and "" or ", no bias")
end

function ConvTranspose2d:describe()
  return {"ConvTranspose2d", self.n_in, self.n_out, kernel_arg(self),
          {stride = self.stride, padding = self.padding, output_padding = self.output_padding,
           bias = self.bias ~= nil}}
end

ConvTranspose2d.parameters = conv_params
ConvTranspose2d.zero_grad = nn._zero_weight_bias

function ConvTranspose2d:output_size(h, w)
  local s, p, op = self.stride, self.padding, self.output_padding
  return (h - 1) * s - 2 * p + self.kh + op, (w - 1) * s - 2 * p + self.kw + op
end

function ConvTranspose2d:forward(x)
  check_input4(self, x, "forward")
  local oh, ow = self:output_size(x:size(3), x:size(4))
  if oh < 1 or ow < 1 then
    error(("%s: input %s gives an empty output (%dx%d)"):format(self.name, shape_str(x),
      oh, ow), 2)
  end
  if x == self.output then self.output = nil end -- not in place
  self.output = buffer(self.output, self.weight:device(), x:size(1), self.n_out, oh, ow)
  C.conv_transpose2d_forward(self.output, x, self.weight, self.bias, self.stride,
                             self.padding, workspace(self, self.output, x, true))
  return self.output
end

function ConvTranspose2d:backward(x, g, need_input_grad)
  check_grad(self, x, g, "backward")
  local gi = input_grad(self, x, g, need_input_grad)
  C.conv_transpose2d_backward(gi, self.grad_weight, self.grad_bias, g, x, self.weight,
                              self.stride, self.padding, workspace(self, g, x, true))
  return gi
end

function ConvTranspose2d:backward_input(x, g)
  check_grad(self, x, g, "backward_input")
  local gi = input_grad(self, x, g)
  C.conv_transpose2d_backward(gi, nil, nil, g, x, self.weight, self.stride, self.padding,
                              workspace(self, g, x, true))
  return gi
end

---------------------------------------------------------------------------
-- BatchNorm2d: nn.BatchNorm on (B, C, H, W), PyTorch's defaults
---------------------------------------------------------------------------
local BatchNorm2d = class("BatchNorm2d", nn.BatchNorm)

function BatchNorm2d:init(n, opts)
  self:_setup(n, opts, {momentum = 0.9, eps = 1e-5})
  local std = opts and opts.gamma_std or 0.02
  nn._check_arg(type(std) == "number" and std >= 0 and std < math.huge, 2, "BatchNorm2d",
                "option 'gamma_std' must be a finite number >= 0, not " .. tostring(std))
  if std > 0 then self.gamma:normal(1, std) end
end

function BatchNorm2d:__tostring()
  return ("nn.BatchNorm2d(%d, momentum %g, eps %g)"):format(self.n, self.momentum, self.eps)
end

function BatchNorm2d:describe()
  return {"BatchNorm2d", self.n, {momentum = self.momentum, eps = self.eps}}
end

function BatchNorm2d:forward(x)
  check_input4(self, x, "forward")
  return nn.BatchNorm.forward(self, x)
end

---------------------------------------------------------------------------
-- Reshape and Flatten: views, no copy.  The view of the last input is kept
-- and reused while the input is the same tensor (the usual case: the layer
-- before reuses its output buffer), so a step makes no new object.
---------------------------------------------------------------------------
-- x:view with 2 to 4 dimensions given as arguments (no table)
local function view_as(x, d1, d2, d3, d4)
  if d4 then return x:view(d1, d2, d3, d4) end
  if d3 then return x:view(d1, d2, d3) end
  return x:view(d1, d2)
end

local function view_forward(self, x, d1, d2, d3, d4)
  local v = self.output
  if self.view_of == x and v then return v end
  local ok, nv = pcall(view_as, x, d1, d2, d3, d4)
  if not ok then
    local dims = {d1, d2, d3, d4}
    error(("%s: cannot view %s as %s"):format(self.name, shape_str(x),
      table.concat(dims, "x")), 3)
  end
  self.view_of, self.output = x, nv
  return nv
end

local function view_backward(self, x, g, need_input_grad)
  if not gan.is_tensor(x) or not gan.is_tensor(g) then
    error(("bad argument to 'backward' (tensors expected)"), 2)
  end
  if not self.output then error(("%s: backward before forward"):format(self.name), 2) end
  if g:numel() ~= x:numel() then
    error(("%s: gradient is %s but the input is %s"):format(self.name, shape_str(g),
      shape_str(x)), 2)
  end
  if need_input_grad == false then return nil end
  if self.grad_of ~= g or self.grad_like ~= x then
    self.grad_of, self.grad_like, self.grad_input = g, x, g:view(x:shape())
  end
  return self.grad_input
end

local Reshape = class "Reshape"

function Reshape:init(...)
  local dims = {...}
  if type(dims[1]) == "table" then dims = dims[1] end
  if #dims < 1 or #dims > 3 then
    arg_error("bad argument to 'Reshape' (1 to 3 dimensions expected, after the batch)")
  end
  for i, d in ipairs(dims) do positive(d, i, "Reshape", "dimension") end
  self.dims = dims
end

function Reshape:__tostring() return ("nn.Reshape(%s)"):format(table.concat(self.dims, "x")) end

function Reshape:describe() return {"Reshape", table.unpack(self.dims)} end

function Reshape:forward(x)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to 'forward' (tensor expected, got %s)"):format(type(x)), 2)
  end
  local d = self.dims
  return view_forward(self, x, x:size(1), d[1], d[2], d[3])
end

Reshape.backward = view_backward

local Flatten = class "Flatten"

function Flatten:init() end

function Flatten:describe() return {"Flatten"} end

function Flatten:forward(x)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to 'forward' (tensor expected, got %s)"):format(type(x)), 2)
  end
  return view_forward(self, x, x:size(1), x:numel() // x:size(1))
end

Flatten.backward = view_backward

return nn
