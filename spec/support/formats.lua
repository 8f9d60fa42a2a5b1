-- spec/support/formats.lua: image files of every kind the loader meets,
-- written byte by byte for the robustness specs and the fuzz corpus (no
-- encoder is installed, and stb_image_write makes only a few kinds).
--   formats.palette_png(w, h, palette, index(x, y))   colour type 3, PLTE
--   formats.bmp(w, h, pixel(x, y) -> {r, g, b})       24-bit, bottom-up
--   formats.pnm(w, h, channels, maxval, pixel)        P5 (grey) or P6 (RGB),
--                                                     16-bit when maxval > 255
--   formats.gif(w, h, palette, frames)                GIF89a, each frame an
--                                                     index(x, y) function
--   formats.jpeg(w, h, values, opts)                  a baseline JPEG of one
--                                                     flat colour (see below)
--   formats.zlib_bomb_png(size)                       1x1 pixel, data that
--                                                     inflate to 'size' bytes
-- Each returns the file's bytes; formats.write(path, bytes) saves them.
local png = require "support.png"

local formats = {}

function formats.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

-- An 8-bit palette PNG: palette is a list of {r, g, b}.
function formats.palette_png(w, h, palette, index)
  local plte = {}
  for i, c in ipairs(palette) do plte[i] = string.char(c[1], c[2], c[3]) end
  local rows = {}
  for y = 0, h - 1 do
    local row = {"\0"}
    for x = 0, w - 1 do row[#row + 1] = string.char(index(x, y)) end
    rows[#rows + 1] = table.concat(row)
  end
  return "\137PNG\r\n\26\n"
    .. png.chunk("IHDR", string.pack(">I4 I4 B B B B B", w, h, 8, 3, 0, 0, 0))
    .. png.chunk("PLTE", table.concat(plte))
    .. png.chunk("IDAT", png.zlib_stored(table.concat(rows)))
    .. png.chunk("IEND", "")
end

-- A 24-bit BMP (BITMAPINFOHEADER, rows bottom-up, padded to 4 bytes).
function formats.bmp(w, h, pixel)
  local pad = (4 - (w * 3) % 4) % 4
  local rows = {}
  for y = h - 1, 0, -1 do
    local row = {}
    for x = 0, w - 1 do
      local p = pixel(x, y)
      row[#row + 1] = string.char(p[3], p[2], p[1])       -- BGR
    end
    rows[#rows + 1] = table.concat(row) .. ("\0"):rep(pad)
  end
  local body = table.concat(rows)
  return "BM" .. string.pack("<I4 I2 I2 I4", 54 + #body, 0, 0, 54)
    .. string.pack("<I4 i4 i4 I2 I2 I4 I4 i4 i4 I4 I4", 40, w, h, 1, 24, 0, #body,
                   2835, 2835, 0, 0)
    .. body
end

-- A binary PGM (channels 1) or PPM (channels 3); samples are big-endian
-- 16-bit when maxval > 255, as the format says.
function formats.pnm(w, h, channels, maxval, pixel)
  local fmt = maxval > 255 and ">I2" or "B"
  local out = {("P%d\n%d %d\n%d\n"):format(channels == 1 and 5 or 6, w, h, maxval)}
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local p = pixel(x, y)
      for c = 1, channels do out[#out + 1] = string.pack(fmt, p[c]) end
    end
  end
  return table.concat(out)
end

-- A GIF89a with a 128-colour global palette and one image per frame (an
-- animation: stb_image returns the first).  The LZW data use 8-bit codes
-- throughout: a clear code every 100 pixels keeps the code table from
-- growing past 256 entries, so each code is one byte.
function formats.gif(w, h, palette, frames)
  local out = {"GIF89a", string.pack("<I2 I2 B B B", w, h, 0xF6, 0, 0)}  -- 128 colours
  for i = 1, 128 do
    local c = palette[i] or {0, 0, 0}
    out[#out + 1] = string.char(c[1], c[2], c[3])
  end
  -- loop forever (NETSCAPE2.0), as animated GIFs do
  out[#out + 1] = "\33\255\11NETSCAPE2.0\3\1\0\0\0"
  for _, index in ipairs(frames) do
    out[#out + 1] = "\33\249\4\0\10\0\0\0"              -- graphic control: 0.1 s
    out[#out + 1] = "," .. string.pack("<I2 I2 I2 I2 B", 0, 0, w, h, 0)
    local codes, n = {128}, 0                           -- clear
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        if n == 100 then codes[#codes + 1], n = 128, 0 end
        codes[#codes + 1] = index(x, y)
        n = n + 1
      end
    end
    codes[#codes + 1] = 129                             -- end of information
    local data = string.char(table.unpack(codes))
    out[#out + 1] = "\7"                                -- LZW minimum code size
    for p = 1, #data, 255 do
      local block = data:sub(p, p + 254)
      out[#out + 1] = string.char(#block) .. block
    end
    out[#out + 1] = "\0"
  end
  out[#out + 1] = ";"
  return table.concat(out)
end

-- A baseline JPEG whose every pixel has the component values 'values'
-- (1 grey, 3 YCbCr, 4 Adobe CMYK): each 8x8 block holds only its DC
-- coefficient, 8 * (v - 128) with unit quantisation, and an end-of-block.
-- opts.adobe = transform (0 CMYK/RGB, 2 YCCK) adds the Adobe APP14 marker
-- that CMYK files carry.  A flat image is all a test needs, and this
-- keeps the encoder to a Huffman table of 12 four-bit DC codes and a
-- one-bit end-of-block.
function formats.jpeg(w, h, values, opts)
  opts = opts or {}
  local nc = #values
  local function seg(marker, body) return "\255" .. marker .. string.pack(">I2", #body + 2) .. body end
  local out = {"\255\216"}                                          -- SOI
  if nc ~= 4 and not opts.adobe then
    out[#out + 1] = seg("\224", "JFIF\0\1\1\0\0\1\0\1\0\0")          -- APP0
  end
  if opts.adobe then
    out[#out + 1] = seg("\238", "Adobe" .. string.pack(">I2 I2 I2 B", 100, 0, 0, opts.adobe))
  end
  out[#out + 1] = seg("\219", "\0" .. ("\1"):rep(64))               -- DQT: all ones
  local sof = {string.pack(">B I2 I2 B", 8, h, w, nc)}
  for c = 1, nc do sof[#sof + 1] = string.char(c, 0x11, 0) end
  out[#out + 1] = seg("\192", table.concat(sof))                    -- SOF0
  -- DHT: DC table 0 with symbols 0..11 of 4 bits; AC table 0 with EOB (1 bit)
  out[#out + 1] = seg("\196", "\0" .. string.char(0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                        .. string.char(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
                        .. "\16" .. string.char(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                        .. "\0")
  local sos = {string.char(nc)}
  for c = 1, nc do sos[#sos + 1] = string.char(c, 0x00) end
  out[#out + 1] = seg("\218", table.concat(sos) .. "\0\63\0")       -- SOS
  -- entropy-coded data
  local bits, nbits, bytes = 0, 0, {}
  local function put(v, n)
    for i = n - 1, 0, -1 do
      bits = (bits << 1) | ((v >> i) & 1)
      nbits = nbits + 1
      if nbits == 8 then
        bytes[#bytes + 1] = string.char(bits)
        if bits == 255 then bytes[#bytes + 1] = "\0" end          -- byte stuffing
        bits, nbits = 0, 0
      end
    end
  end
  local pred = {}
  local blocks = ((w + 7) // 8) * ((h + 7) // 8)
  for _ = 1, blocks do
    for c = 1, nc do
      local dc = 8 * (values[c] - 128)
      local diff = dc - (pred[c] or 0)
      pred[c] = dc
      local mag, s = math.abs(diff), 0
      while (1 << s) <= mag do s = s + 1 end
      put(s, 4)                                                     -- DC category
      if s > 0 then put(diff > 0 and diff or diff + (1 << s) - 1, s) end
      put(0, 1)                                                     -- EOB
    end
  end
  if nbits > 0 then put((1 << (8 - nbits)) - 1, 8 - nbits) end     -- pad with ones
  out[#out + 1] = table.concat(bytes)
  out[#out + 1] = "\255\217"                                        -- EOI
  return table.concat(out)
end

-- A 1x1 RGB PNG whose data inflate to 'size' bytes of zeros (a zlib bomb):
-- one fixed-Huffman deflate block of a literal 0 and copies of 258 bytes at
-- distance 1, 13 bits each, so 8 MB take 52 KB.
function formats.zlib_bomb_png(size)
  local out, acc, nacc = {}, 0, 0
  local function bits(v, n)                 -- n bits of v, LSB first
    acc = acc | (v << nacc)
    nacc = nacc + n
    while nacc >= 8 do
      out[#out + 1] = string.char(acc & 255)
      acc, nacc = acc >> 8, nacc - 8
    end
  end
  local function code(c, n)                 -- a Huffman code, MSB first
    for i = n - 1, 0, -1 do bits((c >> i) & 1, 1) end
  end
  bits(1, 1)                                -- BFINAL
  bits(1, 2)                                -- BTYPE 01: fixed Huffman
  code(0x30, 8)                             -- literal 0
  for _ = 1, (size - 1) // 258 do
    code(0xC5, 8)                           -- length 258 (code 285)
    code(0, 5)                              -- distance 1 (code 0)
  end
  code(0, 7)                                -- end of block (256)
  if nacc > 0 then bits(0, 8 - nacc) end
  local n = 1 + ((size - 1) // 258) * 258
  local adler = ((n % 65521) << 16) | 1     -- of n zero bytes
  local z = "\x78\x01" .. table.concat(out) .. string.pack(">I4", adler)
  return "\137PNG\r\n\26\n"
    .. png.chunk("IHDR", string.pack(">I4 I4 B B B B B", 1, 1, 8, 2, 0, 0, 0))
    .. png.chunk("IDAT", z)
    .. png.chunk("IEND", "")
end

return formats
