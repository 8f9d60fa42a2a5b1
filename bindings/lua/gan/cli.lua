-- gan/cli.lua: the options of a training script.
--
-- A script declares its options once, as a list, with defaults and help:
--   local spec = {
--     {"epochs", 500, "passes over the data", min = 1},
--     {"lr", 2e-4, "Adam learning rate", min = 0},
--     {"device", "auto", "cpu, cuda or auto", choices = {"cpu", "cuda", "auto"}},
--   }
--   local opts = gan.cli.parse(spec, arg, "scripts/strawberry.lua")
-- The type of an option is its default's: integer, number, string or
-- boolean (a flag: --watch; --no-watch).  --help prints them and exits 0; an
-- unknown option or a bad value prints one line naming it and exits 2.
local cli = {}

local function fail(prog, fmt, ...)
  io.stderr:write(prog, ": ", fmt:format(...), "\n")
  os.exit(2)
end

function cli.usage(spec, prog, about)
  local lines = {("usage: gan %s [options]"):format(prog)}
  if about then lines[#lines + 1] = about end
  lines[#lines + 1] = ""
  for _, o in ipairs(spec) do
    local name, default, help = o[1]:gsub("_", "-"), o[2], o[3]
    local flag = type(default) == "boolean" and ("--%s, --no-%s"):format(name, name)
                 or ("--%s %s"):format(name, o.meta or (math.type(default) and "N" or "X"))
    if type(default) == "string" and not o.meta then flag = ("--%s %s"):format(name, "S") end
    local shown = default
    if type(default) == "boolean" then shown = default and "on" or "off"
    elseif default == "" then shown = "none" end
    local dflt = default == nil and "" or (" (default: %s)"):format(tostring(shown))
    if #flag > 24 then flag = flag .. "\n" .. (" "):rep(26) end  -- help under it
    lines[#lines + 1] = ("  %-24s %s%s"):format(flag, help or "", dflt)
  end
  return table.concat(lines, "\n")
end

-- Converts one value, or fails naming the option.
local function convert(prog, o, text)
  local name, default = o[1]:gsub("_", "-"), o[2]  -- named as typed: --sample-every
  local v
  if math.type(default) == "integer" then
    v = math.tointeger(tonumber(text))
    if not v then fail(prog, "--%s needs an integer, not '%s'", name, text) end
  elseif type(default) == "number" then
    v = tonumber(text)
    if not v or v ~= v then fail(prog, "--%s needs a number, not '%s'", name, text) end
  else
    v = text
  end
  if o.min and v < o.min then
    fail(prog, "--%s must be at least %s, not '%s'", name, tostring(o.min), text)
  end
  if o.max and v > o.max then
    fail(prog, "--%s must be at most %s, not '%s'", name, tostring(o.max), text)
  end
  if o.choices then
    local ok = false
    for _, c in ipairs(o.choices) do if c == v then ok = true end end
    if not ok then
      fail(prog, "--%s must be one of %s, not '%s'", name, table.concat(o.choices, ", "), text)
    end
  end
  return v
end

-- Parses args (a list, e.g. the script's 'arg') against spec.  Returns a
-- table of every option (defaults filled in), and the set of the options
-- the command line gave (a resumed run takes the others from its
-- checkpoint).  --name=value also works.
function cli.parse(spec, args, prog, about)
  prog = prog or "script"
  local by_name, opts, given = {}, {}, {}
  for _, o in ipairs(spec) do
    by_name[o[1]] = o
    opts[o[1]] = o[2]
  end
  local i = 1
  while args[i] ~= nil do
    local a = args[i]
    if a == "--help" or a == "-h" then
      print(cli.usage(spec, prog, about))
      os.exit(0)
    end
    local name, value = a:match("^%-%-([%w%-_]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-_]+)$")
    if not name then fail(prog, "unexpected argument '%s' (see --help)", a) end
    local key = name:gsub("%-", "_")
    local o = by_name[key] or by_name[name]
    local negated = false
    if not o and key:sub(1, 3) == "no_" then
      o = by_name[key:sub(4)]
      negated = o and type(o[2]) == "boolean"
      if not negated then o = nil end
    end
    if not o then fail(prog, "unknown option '--%s' (see --help)", name) end
    given[o[1]] = true
    if type(o[2]) == "boolean" then
      if value then fail(prog, "--%s is a flag and takes no value", name) end
      opts[o[1]] = not negated
    else
      if not value then
        i = i + 1
        value = args[i]
        if value == nil then fail(prog, "--%s needs a value", name) end
      end
      opts[o[1]] = convert(prog, o, value)
    end
    i = i + 1
  end
  return opts, given
end

return cli
