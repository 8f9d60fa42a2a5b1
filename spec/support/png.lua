-- spec/support/png.lua: a minimal PNG writer for test fixtures, so the
-- specs can make grey, RGBA and 16-bit images that the engine itself never
-- writes.  Deflate "stored" blocks (no compression), CRC-32 and Adler-32 by
-- the PNG and zlib specifications (RFC 2083, RFC 1950, RFC 1951).
local png = {}

local crc_table = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do
    c = (c & 1) ~= 0 and (0xEDB88320 ~ (c >> 1)) or (c >> 1)
  end
  crc_table[n] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end

local function chunk(kind, data)
  return string.pack(">I4", #data) .. kind .. data .. string.pack(">I4", crc32(kind .. data))
end

local function zlib_stored(raw)
  local parts, pos = {"\x78\x01"}, 1
  repeat
    local block = raw:sub(pos, pos + 65534)
    pos = pos + #block
    local final = pos > #raw and 1 or 0
    parts[#parts + 1] = string.pack("<B I2 I2", final, #block, (~#block) & 0xFFFF) .. block
  until pos > #raw
  parts[#parts + 1] = string.pack(">I4", adler32(raw))
  return table.concat(parts)
end

-- png.encode(w, h, channels, depth, pixel(x, y) -> list of channel values)
-- channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; depth 8 or 16.
function png.encode(w, h, channels, depth, pixel)
  local color = ({[1] = 0, [2] = 4, [3] = 2, [4] = 6})[channels]
  local fmt = depth == 16 and ">I2" or "B"
  local rows = {}
  for y = 0, h - 1 do
    local row = {"\0"}                     -- filter type 0 (none)
    for x = 0, w - 1 do
      local px = pixel(x, y)
      for c = 1, channels do row[#row + 1] = string.pack(fmt, px[c]) end
    end
    rows[#rows + 1] = table.concat(row)
  end
  return "\137PNG\r\n\26\n"
    .. chunk("IHDR", string.pack(">I4 I4 B B B B B", w, h, depth, color, 0, 0, 0))
    .. chunk("IDAT", zlib_stored(table.concat(rows)))
    .. chunk("IEND", "")
end

-- The pieces, for fixtures of other kinds (spec/support/formats.lua).
png.chunk, png.zlib_stored, png.crc32 = chunk, zlib_stored, crc32

function png.write(path, ...)
  local f = assert(io.open(path, "wb"))
  f:write(png.encode(...))
  f:close()
end

return png
