-- tests/emu/launch.lua IN.cu OUT.cpp [HEADERS...]: rewrites the kernel
-- launches of a .cu file for the host emulator (cuda_runtime.h):
--
--     k<<<grid, block, shared, stream>>>(args);
--  -> emu_launch(B, "k", dim3(grid), dim3(block), [&] { k(args); });
--
-- B is 1 when the kernel has barriers: its body (in IN or one of the
-- headers) calls __syncthreads, __shfl_down_sync, or a __device__ function
-- that does (block_sum), so that its threads must run as fibers.
local BARRIERS = {"__syncthreads", "__shfl_down_sync"}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- index of the bracket that closes the one at text[i]
local function matching(text, i, open, close)
  local depth = 0
  for j = i, #text do
    local ch = text:sub(j, j)
    if ch == open then depth = depth + 1
    elseif ch == close then
      depth = depth - 1
      if depth == 0 then return j end
    end
  end
  error(("launch.lua: unbalanced '%s'"):format(open))
end

-- name -> body of every __global__ or __device__ function defined in text
local function bodies(text, out)
  text = text:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
  for _, kw in ipairs{"__global__", "__device__"} do
    local pos = 1
    while true do
      local a, b = text:find(kw, pos, true)
      if not a then break end
      pos = b + 1
      -- the function's name: the identifier before the first '(' that
      -- comes before any ';', '{' or '}'
      local head_end = text:find("[;{}(]", pos)
      if head_end and text:sub(head_end, head_end) == "(" then
        local name = text:sub(pos, head_end - 1):match("([%w_]+)%s*$")
        local close = matching(text, head_end, "(", ")")
        local brace = text:find("%S", close + 1)
        if name and brace and text:sub(brace, brace) == "{" then
          out[name] = text:sub(brace + 1, matching(text, brace, "{", "}") - 1)
        end
      end
    end
  end
  return out
end

local function with_barriers(funcs)
  local names, changed = {}, true
  while changed do
    changed = false
    for name, body in pairs(funcs) do
      if not names[name] then
        local hit = false
        for _, b in ipairs(BARRIERS) do hit = hit or body:find(b, 1, true) ~= nil end
        for n in pairs(names) do hit = hit or body:find("%f[%w_]" .. n .. "%s*%(") ~= nil end
        if hit then names[name], changed = true, true end
      end
    end
  end
  return names
end

-- the top-level comma-separated parts of s
local function split_top(s)
  local parts, depth, cur = {}, 0, {}
  for ch in s:gmatch(".") do
    if ch:match("[%(%[{]") then depth = depth + 1 elseif ch:match("[%)%]}]") then depth = depth - 1 end
    if ch == "," and depth == 0 then
      parts[#parts + 1] = table.concat(cur)
      cur = {}
    else
      cur[#cur + 1] = ch
    end
  end
  parts[#parts + 1] = table.concat(cur)
  for i, p in ipairs(parts) do parts[i] = p:match("^%s*(.-)%s*$") end
  return parts
end

local src, dst = arg[1], arg[2]
local text, funcs = read(src), {}
for i = 3, #arg do bodies(read(arg[i]), funcs) end
bodies(text, funcs)
local barrier = with_barriers(funcs)
local out, pos = {}, 1
while true do
  local a, b, name = text:find("([%w_]+)%s*<<<", pos)
  if not a then break end
  local e = assert(text:find(">>>", b + 1, true), "launch of " .. name .. " without '>>>'")
  local config = split_top(text:sub(b + 1, e - 1))
  local i = assert(text:find("%S", e + 3))
  assert(text:sub(i, i) == "(", "launch of " .. name .. " without arguments")
  local j = matching(text, i, "(", ")")
  out[#out + 1] = text:sub(pos, a - 1)
  out[#out + 1] = ('emu_launch(%d, "%s", dim3(%s), dim3(%s), [&] { %s(%s); })'):format(
    barrier[name] and 1 or 0, name, config[1], config[2], name, text:sub(i + 1, j - 1))
  pos = j + 1
end
out[#out + 1] = text:sub(pos)
local f = assert(io.open(dst, "wb"))
f:write(table.concat(out))
f:close()
