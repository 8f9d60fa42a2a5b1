-- spec/support/util.lua: temporary folders and running the gan program.
local util = {}

util.root = os.getenv("GAN_ROOT") or "."
util.bin = os.getenv("GAN_BIN") or (util.root .. "/build/gan")
util.device = os.getenv("GAN_TEST_DEVICE") or "cpu"

function util.tmpdir()
  local p = io.popen("mktemp -d /tmp/gan-spec.XXXXXX")
  local dir = p:read("l")
  p:close()
  return dir
end

function util.rmdir(dir)
  assert(dir:match("^/tmp/gan%-spec%."), "refusing to remove " .. dir)
  os.execute("rm -rf '" .. dir .. "'")
end

function util.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function util.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
util.quote = quote

-- Runs `gan args...` with optional stdin text; returns exit code, stdout,
-- stderr.
function util.run(args, stdin, env)
  local dir = util.tmpdir()
  local cmd = {}
  for k, v in pairs(env or {}) do cmd[#cmd + 1] = k .. "=" .. quote(v) end
  cmd[#cmd + 1] = quote(util.bin)
  for _, a in ipairs(args) do cmd[#cmd + 1] = quote(a) end
  if stdin then
    util.write(dir .. "/in", stdin)
    cmd[#cmd + 1] = "<" .. quote(dir .. "/in")
  else
    cmd[#cmd + 1] = "</dev/null"
  end
  cmd[#cmd + 1] = ">" .. quote(dir .. "/out") .. " 2>" .. quote(dir .. "/err")
  local _, _, code = os.execute(table.concat(cmd, " "))
  local out, err = util.read(dir .. "/out"), util.read(dir .. "/err")
  util.rmdir(dir)
  return code, out, err
end

return util
