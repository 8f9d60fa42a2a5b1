-- gan/checkpoint.lua: what a checkpoint of a training run holds, and how it
-- goes back into models.
--
--   gan.save(path, state)     state = {models = {G = G, D = D},
--                                      optims = {G = g_opt, D = d_opt},
--                                      noise = z_fixed, epoch = 3, step = 12,
--                                      opts = opts, range = "0,1", extra = {...}}
--   local ck = gan.load(path) -- ck.G, ck.D rebuilt and ready to sample (in
--                             -- evaluation mode), ck.noise, ck.epoch, ck.step,
--                             -- ck.opts, ck.rng, ck.optims, ck.extra
--   ck:save_grid("grid.png")  -- G on the fixed noise, as a grid
--   gan.checkpoint.restore(path_or_read, state)  -- into live models/optimizers
--
-- The file (core/checkpoint.h) is a list of named tensors plus one blob,
-- "meta", which is Lua source for everything that is not a tensor: the
-- options, epoch, step, the generator's state, and a description of each
-- model from which gan.load rebuilds it without the script.  Tensor names:
--   model/G/1.1.weight        parameters, named as G:parameters() names them
--   buffer/G/1.3.running_mean BatchNorm running statistics (m:buffers())
--   optim/G/m/1/1.1.weight    Adam's moments, by place and parameter name
--   noise                     the fixed sample noise
--
-- Restoring checks every name and shape against the live objects before it
-- copies anything: a checkpoint of a different model is refused with the
-- first difference, and nothing changes.
--
-- Model descriptions: describe(m) knows the modules of gan.nn.  A module of
-- another class can say how to rebuild it with a describe() method that
-- returns {"ClassName", arg1, arg2, ...} such that gan.nn.ClassName(arg1,
-- arg2, ...) builds the same module (plain numbers, strings, booleans and
-- tables as arguments).  A model that cannot be described still saves and
-- restores into live models; only gan.load, which rebuilds, refuses it.
local gan = require "gan"

local checkpoint = {}

local FORMAT = "gan run"

---------------------------------------------------------------------------
-- Lua values as Lua source, and back (in an empty environment)
---------------------------------------------------------------------------
local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local
            nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

-- checkpoint.is_name(k): k can be written bare as a table key (k = v)
function checkpoint.is_name(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not keywords[k]
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end  -- numbers before strings
  return a < b
end

local function ser(v, out, indent, seen)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then
      -- a decimal literal of mininteger would read back as a float
      out[#out + 1] = v == math.mininteger and "0x8000000000000000" or ("%d"):format(v)
    elseif v ~= v then
      out[#out + 1] = "0/0"
    elseif v == math.huge or v == -math.huge then
      out[#out + 1] = v > 0 and "1/0" or "-1/0"
    else
      local s                                -- the shortest exact form
      for digits = 15, 17 do
        s = ("%." .. digits .. "g"):format(v)
        if tonumber(s) == v then break end
      end
      if not s:find("[%.eEn]") then s = s .. ".0" end  -- stays a float
      out[#out + 1] = s
    end
  elseif t == "string" then
    out[#out + 1] = ("%q"):format(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    if seen[v] then error("serialize: a table contains itself", 0) end
    seen[v] = true
    local n, keys = #v, {}
    for k in pairs(v) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        if type(k) ~= "string" and type(k) ~= "number" then
          error(("serialize: a key of type %s"):format(type(k)), 0)
        end
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, key_order)
    if n + #keys == 0 then
      out[#out + 1] = "{}"
    else
      local inner = indent .. "  "
      out[#out + 1] = "{\n"
      for i = 1, n do
        out[#out + 1] = inner
        ser(v[i], out, inner, seen)
        out[#out + 1] = ",\n"
      end
      for _, k in ipairs(keys) do
        out[#out + 1] = inner
        if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
          out[#out + 1] = k
        else
          out[#out + 1] = "["
          ser(k, out, inner, seen)
          out[#out + 1] = "]"
        end
        out[#out + 1] = " = "
        ser(v[k], out, inner, seen)
        out[#out + 1] = ",\n"
      end
      out[#out + 1] = indent .. "}"
    end
    seen[v] = nil
  elseif v == nil then
    out[#out + 1] = "nil"
  else
    error(("serialize: cannot save a %s"):format(t), 0)
  end
end

-- serialize(v) -> Lua source of an expression: numbers (exactly), strings,
-- booleans and nested tables of them.
function checkpoint.serialize(v)
  local out = {}
  ser(v, out, "", {})
  return table.concat(out)
end

-- The text outside double-quoted strings, or nil if a string is not closed.
local function outside_strings(text)
  local parts, pos = {}, 1
  while true do
    local q = text:find('"', pos, true)
    if not q then
      parts[#parts + 1] = text:sub(pos)
      return table.concat(parts)
    end
    parts[#parts + 1] = text:sub(pos, q - 1)
    local j = q + 1
    while true do
      local k = text:find('["\\]', j)
      if not k then return nil end
      if text:byte(k) == 92 then j = k + 2 else pos = k + 1 break end  -- 92: backslash
    end
  end
end

-- deserialize(text, name) -> the value serialize wrote.  Only literals and
-- table constructors are accepted: outside strings there may be no call, no
-- method and no other kind of string, and the chunk runs in an empty
-- environment, so a crafted file cannot run code.
function checkpoint.deserialize(text, name)
  local code = outside_strings(text)
  if not code or code:find("[%(:']") or code:find("%[[%[=]") then
    return nil, ("%s: not a plain Lua value"):format(name)
  end
  local f, err = load("return " .. text, "=" .. name, "t", {})
  if not f then return nil, err end
  local ok, v = pcall(f)
  if not ok then return nil, ("%s: %s"):format(name, tostring(v)) end
  return v
end

---------------------------------------------------------------------------
-- Model descriptions
---------------------------------------------------------------------------
local describe

local builtin = {
  Linear = function(m) return {"Linear", m.n_in, m.n_out, m.bias == nil and {bias = false} or nil} end,
  ReLU = function() return {"ReLU"} end,
  Sigmoid = function() return {"Sigmoid"} end,
  Tanh = function() return {"Tanh"} end,
  Identity = function() return {"Identity"} end,
  LeakyReLU = function(m) return {"LeakyReLU", m.alpha} end,
  Dropout = function(m) return {"Dropout", m.p} end,
  BatchNorm = function(m) return {"BatchNorm", m.n, {momentum = m.momentum, eps = m.eps}} end,
  Sequential = function(m)
    local d = {"Sequential"}
    for i, c in ipairs(m.modules) do
      local ok, cd = pcall(describe, c)
      if not ok then error(("module %d of Sequential: %s"):format(i, cd), 0) end
      d[i + 1] = cd
    end
    return d
  end,
}

-- describe(m) -> {"ClassName", constructor args...}; Sequential lists its
-- children's descriptions.  A module's own describe() method comes first.
function describe(m)
  if type(m) ~= "table" then error(("cannot describe a %s"):format(type(m)), 0) end
  if type(m.describe) == "function" then return m:describe() end
  local name = m.name
  if builtin[name] and getmetatable(m) == gan.nn[name] then return builtin[name](m) end
  error(("cannot describe %s for a checkpoint: give its class a describe() method "
         .. "returning {\"ClassName\", constructor args...}"):format(tostring(m)), 0)
end
checkpoint.describe = describe

-- build(desc) -> a new module, on the current device, from a description.
function checkpoint.build(desc)
  if type(desc) ~= "table" or type(desc[1]) ~= "string" then
    error("bad model description (expected {\"ClassName\", args...})", 2)
  end
  local cls = gan.nn[desc[1]]
  if not cls then error(("unknown module class nn.%s"):format(desc[1]), 0) end
  if desc[1] == "Sequential" then
    local s = cls()
    for i = 2, #desc do s:add(checkpoint.build(desc[i])) end
    return s
  end
  return cls(table.unpack(desc, 2))
end

---------------------------------------------------------------------------
-- Saving
---------------------------------------------------------------------------
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  return keys
end

local function shape_str(shape)
  return #shape == 0 and "scalar" or table.concat(shape, "x")
end

-- The tensors of an optimizer: Adam's two moment lists, parallel to its
-- parameters.  Anything else is refused by name.
local function optim_state(name, o)
  if type(o) ~= "table" or type(o.m) ~= "table" or type(o.v) ~= "table"
     or type(o.params) ~= "table" or math.type(o.t) ~= "integer" then
    error(("cannot checkpoint optimizer '%s': only gan.optim.Adam is supported"):format(
      tostring(name)), 0)
  end
  local list = {}
  for i, p in ipairs(o.params) do
    list[#list + 1] = {name = ("optim/%s/m/%d/%s"):format(name, i, p.name or ""), value = o.m[i]}
    list[#list + 1] = {name = ("optim/%s/v/%d/%s"):format(name, i, p.name or ""), value = o.v[i]}
  end
  return list
end

-- The named tensors of a model: parameters, then buffers.
local function model_tensors(name, m)
  local list = {}
  for _, p in ipairs(m:parameters()) do
    list[#list + 1] = {name = ("model/%s/%s"):format(name, p.name), value = p.value}
  end
  for _, b in ipairs(m.buffers and m:buffers() or {}) do
    list[#list + 1] = {name = ("buffer/%s/%s"):format(name, b.name), value = b.value}
  end
  return list
end

-- save(path, state): see the header.  The file is replaced atomically: a
-- failure (or a crash) leaves the previous checkpoint at 'path' whole.
function checkpoint.save(path, state)
  if type(path) ~= "string" then error("bad argument #1 to 'save' (file name expected)", 2) end
  if type(state) ~= "table" or type(state.models) ~= "table" then
    error("bad argument #2 to 'save' (a table with models = {name = module} expected)", 2)
  end
  local meta = {
    format = FORMAT, epoch = state.epoch or 0, step = state.step or 0,
    rng = state.rng or gan.rng_state(), opts = state.opts, range = state.range,
    extra = state.extra, models = {}, optims = {},
  }
  for name, m in pairs(state.models) do
    if type(name) ~= "string" or type(m) ~= "table" or type(m.parameters) ~= "function" then
      error(("bad argument #2 to 'save' (models.%s is a %s, not a module of gan.nn)"):format(
        tostring(name), type(m)), 2)
    end
  end
  for name, o in pairs(state.optims or {}) do
    if type(name) ~= "string" or type(o) ~= "table" or type(o.params) ~= "table" then
      error(("bad argument #2 to 'save' (optims.%s is a %s, not a gan.optim optimizer)"):format(
        tostring(name), type(o)), 2)
    end
  end
  local entries = {{name = "meta"}}
  for _, name in ipairs(sorted_keys(state.models)) do
    local m = state.models[name]
    local ok, desc = pcall(describe, m)
    meta.models[name] = ok and {describe = desc} or {why = desc}
    for _, e in ipairs(model_tensors(name, m)) do entries[#entries + 1] = e end
  end
  for _, name in ipairs(sorted_keys(state.optims)) do
    local o = state.optims[name]
    for _, e in ipairs(optim_state(name, o)) do entries[#entries + 1] = e end
    meta.optims[name] = {kind = "Adam", t = o.t, lr = o.lr, beta1 = o.beta1, beta2 = o.beta2,
                         eps = o.eps, weight_decay = o.weight_decay, form = o.form}
  end
  if state.noise then entries[#entries + 1] = {name = "noise", value = state.noise} end
  entries[1].blob = "return " .. checkpoint.serialize(meta) .. "\n"
  gan.C.ckpt_write(path, entries)
  return path
end

---------------------------------------------------------------------------
-- Reading and restoring
---------------------------------------------------------------------------

-- read(path) -> {path =, meta =, tensors = {name = cpu tensor}}: the whole
-- file, checked (sizes, checksums, the metadata), but applied to nothing.
function checkpoint.read(path)
  if type(path) ~= "string" then error("bad argument #1 to 'read' (file name expected)", 2) end
  local ok, list = pcall(gan.C.ckpt_read, path)
  if not ok then error(list, 0) end
  local ck = {path = path, tensors = {}}
  for _, e in ipairs(list) do
    if ck.tensors[e.name] or (e.name == "meta" and ck.meta) then
      error(("checkpoint '%s' is corrupted: two entries are named '%s'"):format(path, e.name), 0)
    end
    if e.name == "meta" then
      if not e.blob then error(("checkpoint '%s': 'meta' is not a blob"):format(path), 0) end
      local text = e.blob:gsub("^return ", "", 1)
      local meta, err = checkpoint.deserialize(text, path .. ":meta")
      if type(meta) ~= "table" then
        error(("checkpoint '%s' has unreadable metadata: %s"):format(path, tostring(err)), 0)
      end
      ck.meta = meta
    elseif e.value then
      ck.tensors[e.name] = e.value
    end
  end
  local meta = ck.meta
  if not meta or meta.format ~= FORMAT or type(meta.models) ~= "table" then
    error(("'%s' is a gan checkpoint file but not of a training run (no run metadata)")
      :format(path), 0)
  end
  return ck
end

-- The checkpoint's tensor 'name' for the live tensor t, or an error naming
-- the first difference.
local function matching(ck, name, t, what)
  local f = ck.tensors[name]
  if not f then
    error(("checkpoint '%s' does not fit: it has no %s"):format(ck.path, what), 0)
  end
  local a, b = shape_str(f:shape()), shape_str(t:shape())
  if a ~= b then
    error(("checkpoint '%s' does not fit: %s is %s in the file but %s here")
      :format(ck.path, what, a, b), 0)
  end
  return f
end

-- restore(ck_or_path, state) -> the checkpoint's metadata.  state holds the
-- live models, optims and noise (any of them) as save takes them.  Every
-- name and shape is checked before the first copy.
function checkpoint.restore(ck, state)
  if type(ck) == "string" then ck = checkpoint.read(ck) end
  local copies = {}  -- pairs {live, from file}
  local function want(name, t, what)
    copies[#copies + 1] = {t, matching(ck, name, t, what)}
  end
  for _, mname in ipairs(sorted_keys(state.models)) do
    local m = state.models[mname]
    local prefix_p, prefix_b = "model/" .. mname .. "/", "buffer/" .. mname .. "/"
    local live = {}
    for _, e in ipairs(model_tensors(mname, m)) do
      live[e.name] = true
      local is_param = e.name:sub(1, 6) == "model/"
      local kind = is_param and "parameter" or "buffer"
      local short = e.name:sub((is_param and #prefix_p or #prefix_b) + 1)
      want(e.name, e.value, ("%s %s of model %s"):format(kind, short, mname))
    end
    for _, name in ipairs(sorted_keys(ck.tensors)) do
      if (name:sub(1, #prefix_p) == prefix_p or name:sub(1, #prefix_b) == prefix_b)
         and not live[name] then
        error(("checkpoint '%s' does not fit: model %s has no %s %s, which the file has")
          :format(ck.path, mname, name:sub(1, 6) == "model/" and "parameter" or "buffer",
                  (name:gsub("^%a+/[^/]+/", ""))), 0)
      end
    end
  end
  local steps = {}
  for _, oname in ipairs(sorted_keys(state.optims)) do
    local o = state.optims[oname]
    local info = ck.meta.optims and ck.meta.optims[oname]
    if not info then
      error(("checkpoint '%s' does not fit: it has no optimizer %s"):format(ck.path, oname), 0)
    end
    for _, e in ipairs(optim_state(oname, o)) do
      want(e.name, e.value, ("state %s of optimizer %s"):format(e.name:sub(#oname + 8), oname))
    end
    local n = 0
    for name in pairs(ck.tensors) do
      if name:sub(1, #oname + 9) == "optim/" .. oname .. "/m/" then n = n + 1 end
    end
    if n ~= #o.params then
      error(("checkpoint '%s' does not fit: optimizer %s holds %d tensors in the file, %d here")
        :format(ck.path, oname, n, #o.params), 0)
    end
    steps[o] = info.t
  end
  if state.noise then want("noise", state.noise, "the sample noise") end
  -- everything fits: now copy
  for _, c in ipairs(copies) do c[1]:copy(c[2]) end
  for o, t in pairs(steps) do o.t = t end
  return ck.meta
end

---------------------------------------------------------------------------
-- gan.load: rebuild the models and restore them
---------------------------------------------------------------------------
local Loaded = {}
Loaded.__index = Loaded

-- G's output for z: the fixed noise if nil, n new latents of its size if
-- a number; errors name argument #i of method 'fname', at its caller.
local function generate(self, z, fname, i)
  local G = self.models.G
  if not G then error("this checkpoint has no model named G", 3) end
  if z == nil then
    z = self.noise
  elseif math.type(z) == "integer" and z >= 1 then
    local shape = self.noise:shape()
    shape[1] = z
    z = gan.randn(shape)
  elseif not gan.is_tensor(z) then
    error(("bad argument #%d to '%s' (a number of samples (1 or more) or a latent tensor "
      .. "expected, got %s)"):format(i, fname, math.type(z) and tostring(z) or type(z)), 3)
  end
  return G:forward(z)
end

-- ck:sample([z | n]) -> G's output for z (default: the fixed noise, or n
-- new latents of the same size).
function Loaded:sample(z)
  return generate(self, z, "sample", 1)
end

-- ck:save_grid(path [, z | n]) -> path: a grid of samples, in the run's range.
function Loaded:save_grid(path, z)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'save_grid' (file name expected, got %s)"):format(type(path)), 2)
  end
  local x = generate(self, z, "save_grid", 2)
  gan.images.save_grid(x, path, {cols = gan.train.grid_cols(x:size(1)),
                                 range = self.range or "0,1"})
  return path
end

-- load(path) -> the models rebuilt from their descriptions (on the current
-- device, in evaluation mode), their tensors restored, and the rest of the
-- state; see the header.  The generator is left as it was.
function checkpoint.load(path)
  if type(path) ~= "string" then error("bad argument #1 to 'load' (file name expected)", 2) end
  local ck = checkpoint.read(path)
  local models, rng = {}, gan.rng_state()
  for _, name in ipairs(sorted_keys(ck.meta.models)) do
    local info = ck.meta.models[name]
    if not info.describe then
      error(("checkpoint '%s': model %s cannot be rebuilt: %s"):format(path, name,
        tostring(info.why)), 0)
    end
    local ok, m = pcall(checkpoint.build, info.describe)
    if not ok then
      gan.rng_state(rng)
      error(("checkpoint '%s': model %s cannot be rebuilt: %s"):format(path, name,
        gan.message(m)), 0)
    end
    models[name] = m
  end
  gan.rng_state(rng)  -- the initialisation draws of the rebuilt models
  local meta = checkpoint.restore(ck, {models = models})
  local dev = gan.device()
  local optims = {}
  for name, info in pairs(meta.optims or {}) do
    local o = {m = {}, v = {}}
    for k, v in pairs(info) do o[k] = v end
    for tname, t in pairs(ck.tensors) do
      local which, i = tname:match("^optim/" .. name:gsub("%p", "%%%0") .. "/([mv])/(%d+)/")
      if which then o[which][tonumber(i)] = t end
    end
    optims[name] = o
  end
  local out = setmetatable({
    path = path, models = models, optims = optims,
    noise = ck.tensors.noise and ck.tensors.noise:to(dev),
    epoch = meta.epoch, step = meta.step, opts = meta.opts, rng = meta.rng,
    range = meta.range, extra = meta.extra,
  }, Loaded)
  for name, m in pairs(models) do
    m:evaluate()
    if out[name] == nil then out[name] = m end
  end
  return out
end

return checkpoint
