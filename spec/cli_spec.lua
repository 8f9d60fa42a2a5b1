-- The gan program run as a subprocess: options, scripts, exit codes, the
-- REPL through a pipe, and a short run of scripts/strawberry.lua.
local util = require "support.util"
local run = util.run

describe("the gan program", function()
  it("prints its version and the backends", function()
    local code, out = run({"--version"})
    assert.equal(0, code)
    assert.truthy(out:find("^gan %d+%.%d+%.%d+ %(Lua 5%.4"), out)
    assert.truthy(out:find("backends: cpu"), out)
  end)

  it("runs -e code with gan preloaded", function()
    local code, out = run({"-e", "print(gan.zeros(2, 3):numel(), require('gan') == gan)"})
    assert.equal(0, code)
    assert.equal("6\ttrue\n", out)
  end)

  it("passes script arguments as arg and ...", function()
    local dir = util.tmpdir()
    util.write(dir .. "/s.lua", "print(arg[0]:match('s.lua'), arg[1], arg[2], select('#', ...), ...)")
    local code, out = run({dir .. "/s.lua", "a", "b c"})
    util.rmdir(dir)
    assert.equal(0, code)
    assert.equal("s.lua\ta\tb c\t2\ta\tb c\n", out)
  end)

  it("exits 1 with a traceback when a script fails", function()
    local dir = util.tmpdir()
    util.write(dir .. "/bad.lua", "local function f() error('kaput') end\nf()\n")
    local code, _, err = run({dir .. "/bad.lua"})
    assert.equal(1, code)
    assert.truthy(err:find("kaput"), err)
    assert.truthy(err:find("stack traceback"), err)
    code, _, err = run({dir .. "/missing.lua"})
    assert.equal(1, code)
    assert.truthy(err:find("missing.lua", 1, true), err)
    util.rmdir(dir)
  end)

  it("passes os.exit codes through and rejects unknown options", function()
    assert.equal(3, (run({"-e", "os.exit(3)"})))
    local code, _, err = run({"--frobnicate"})
    assert.equal(1, code)
    assert.truthy(err:find("frobnicate"), err)
  end)

  it("is a REPL on a pipe: prints expressions, survives errors, continues lines", function()
    local code, out, err = run({}, table.concat({
      "x = gan.randn(2,3)", "print(x)", 'error("boom")', 'print("still alive")',
      "1 + 1", "for i = 1, 2 do", "  print('i', i)", "end", "nosuch.call()", "print('end')"}, "\n") .. "\n")
    assert.equal(0, code)
    assert.truthy(out:find("tensor 2x3 (cpu)", 1, true), out)
    assert.truthy(err:find("boom"), err)
    assert.truthy(out:find("still alive\n2\ni\t1\ni\t2\nend\n", 1, true), out)
    assert.truthy(err:find("nosuch"), err)
  end)

  it("prints a small plain table as its contents (t:shape(), t:totable()), others as print does",
     function()
    local code, out, err = run({}, 'x = gan.zeros(2, 3)\nx:shape()\n{1, "a", true}\n{1, k = 2}\n'
      .. 'x:totable()\n{b = {1, 2}, ["a b"] = false, t = x}\ngan.zeros(100):totable()\n'
      .. 'gan.nn.Linear(2, 3)\nsetmetatable({}, {})\nprint("end")\n')
    assert.equal(0, code)
    assert.truthy(out:find('^{2, 3}\n{1, "a", true}\n{1, k = 2}\n{{0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}}\n'
      .. '{%["a b"%] = false, b = {1, 2}, t = tensor 2x3 %(cpu%)}\ntable: 0x%x+\nnn.Linear%(2 %-> 3%)\n'
      .. 'table: 0x%x+\nend\n$'),
      out .. err)
  end)

  it("interrupts the next REPL line at once after a run that deferred Ctrl-C failed", function()
    -- line 1 turns deferred mode on (as run:fit does) and fails; line 2
    -- loops for 4 s and gets Ctrl-C after 1.5 s
    local dir = util.tmpdir()
    util.write(dir .. "/in", 'gan.defer_interrupts(true) error("run failed")\n'
      .. 'local t = os.clock() while os.clock() - t < 4 do end print("not interrupted")\n'
      .. 'print("alive")\n')
    local cmd = ("(%s < %s > %s 2>&1 & echo $! > %s; wait) & sleep 1.5; kill -INT $(cat %s); wait")
      :format(util.quote(util.bin), util.quote(dir .. "/in"), util.quote(dir .. "/out"),
              util.quote(dir .. "/pid"), util.quote(dir .. "/pid"))
    os.execute("bash -c " .. util.quote(cmd))
    local out = util.read(dir .. "/out") or ""
    util.rmdir(dir)
    assert.truthy(out:find("run failed", 1, true), out)
    assert.truthy(out:find("interrupted (Ctrl-C) at stdin:", 1, true), out)
    assert.falsy(out:find("not interrupted", 1, true), out)
    assert.truthy(out:find("alive", 1, true), out)
  end)

  it("takes one Ctrl-C delivered twice in a long C call as one: exit 130 and the line", function()
    -- kill(1) twice at once, as timeout(1) delivers one: before, the second
    -- found the default handler and killed gan without a word
    local dir = util.tmpdir()
    util.write(dir .. "/c.lua", 'local a, c = gan.randn(1500, 1500, "cpu"), gan.empty(1500, 1500, "cpu")\n'
      .. 'io.stderr:write("ready\\n")\n'
      .. 'for _ = 1, 200 do gan.C.matmul(c, a, false, a, false) end\n')
    local cmd = ("(%s %s 2> %s & echo $! > %s; wait $!; echo $? > %s) & "
      .. "for _ in $(seq 100); do grep -q ready %s 2>/dev/null && break; sleep 0.05; done; "
      .. "sleep 0.3; kill -INT $(cat %s); kill -INT $(cat %s); wait"):format(
      util.quote(util.bin), util.quote(dir .. "/c.lua"), util.quote(dir .. "/err"),
      util.quote(dir .. "/pid"), util.quote(dir .. "/code"), util.quote(dir .. "/err"),
      util.quote(dir .. "/pid"), util.quote(dir .. "/pid"))
    os.execute("bash -c " .. util.quote(cmd))
    local err = util.read(dir .. "/err") or ""
    assert.equal("130", (util.read(dir .. "/code") or ""):match("%d+"), err)
    assert.truthy(err:find("interrupted (Ctrl-C)", 1, true), err)
    util.rmdir(dir)
  end)

  it("exits 130 when Ctrl-C stops a script, also one that catches it and exits 1", function()
    local dir = util.tmpdir()
    util.write(dir .. "/busy.lua", 'local function spin() local t = os.clock() '
      .. 'while os.clock() - t < 6 do end end\n'
      .. 'if arg[1] == "catch" then\n'
      .. '  local ok, err = pcall(spin)\n'
      .. '  io.stderr:write("caught: ", tostring(err), "\\n")\n'
      .. '  os.exit(1)\n'
      .. 'end\n'
      .. 'spin()\n')
    for _, mode in ipairs{"plain", "catch"} do
      local cmd = ("(%s %s %s 2> %s & echo $! > %s; wait $!; echo $? > %s) & sleep 1.5; "
        .. "kill -INT $(cat %s); wait"):format(util.quote(util.bin), util.quote(dir .. "/busy.lua"),
        mode, util.quote(dir .. "/err"), util.quote(dir .. "/pid"), util.quote(dir .. "/code"),
        util.quote(dir .. "/pid"))
      os.execute("bash -c " .. util.quote(cmd))
      local err = util.read(dir .. "/err") or ""
      assert.equal("130", (util.read(dir .. "/code") or ""):match("%d+"), mode .. ": " .. err)
      if mode == "plain" then
        assert.truthy(err:find("interrupted (Ctrl-C) at " .. dir .. "/busy.lua:", 1, true), err)
        assert.falsy(err:find("traceback", 1, true), err)
      else
        assert.truthy(err:find("caught: ", 1, true), err)
      end
    end
    util.rmdir(dir)
  end)

  it("-i runs a script then the REPL with its globals", function()
    local dir = util.tmpdir()
    util.write(dir .. "/g.lua", "answer = 41\n")
    local code, out = run({"-i", dir .. "/g.lua"}, "answer + 1\n")
    util.rmdir(dir)
    assert.equal(0, code)
    assert.equal("42\n", out)
  end)
end)

describe("scripts/strawberry.lua", function()
  local script = util.root .. "/scripts/strawberry.lua"

  -- The real photos when they are beside the project (../shared/data), else
  -- 200 generated 24x24 PNGs, so the spec runs anywhere.
  local function dataset(tmp)
    local real = util.root .. "/../shared/data/strawberries"
    local ok = os.execute("test -d '" .. real .. "'")
    if ok then return real, 402 end
    local png = require "support.png"
    for i = 1, 200 do
      png.write(("%s/img%03d.png"):format(tmp, i), 24, 24, 3, 8, function(x, y)
        return {(x * 10 + i) % 256, (y * 10) % 256, (x * y + i) % 256}
      end)
    end
    return tmp, 200
  end

  it("trains 2 epochs at size 16 and writes its samples and loss.csv", function()
    local out, tmp = util.tmpdir(), util.tmpdir()
    local data, n = dataset(tmp)
    local steps = n // 100
    local code, _, err = run({script, "--data", data, "--size", "16", "--epochs", "2",
                              "--sample-every", "1", "--out", out, "--device", util.device})
    assert.equal(0, code, err)
    for _, e in ipairs{"0000", "0001", "0002"} do
      local png = util.read(out .. "/samples/epoch_" .. e .. ".png")
      assert.truthy(png and png:sub(2, 4) == "PNG", "epoch " .. e)
      local w, h = string.unpack(">I4 I4", png, 17)
      assert.same({5 * 16 + 4 * 2, 2 * 16 + 2}, {w, h})   -- 10 samples: 5 x 2
    end
    local csv = util.read(out .. "/loss.csv")
    local lines = {}
    for l in csv:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("epoch,step,d_loss,g_loss,d_real,d_fake", lines[1])
    assert.equal(3, #lines)
    assert.truthy(lines[3]:find("^2," .. 2 * steps .. ","), lines[3])   -- N // 100 steps an epoch
    assert.falsy(csv:find("nan"))
    assert.truthy(err:find(("epoch 2/2 |##########| %d/%d"):format(steps, steps), 1, true), err)
    util.rmdir(out)
    util.rmdir(tmp)
  end)

  it("builds the seed's models and ends in the REPL with -i", function()
    local tmp, out = util.tmpdir(), util.tmpdir()
    local data = dataset(tmp)
    local code, stdout, err = run({"-i", script, "--data", data, "--size", "8", "--epochs", "1",
                                   "--out", out, "--device", util.device},
      "print(#G:parameters(), #D:parameters(), #G.modules, #D.modules, opts.size, data:size(2))\n")
    util.rmdir(tmp)
    util.rmdir(out)
    assert.equal(0, code, err)
    -- G: 3 blocks of Linear + LeakyReLU + BatchNorm (4 tensors each) + Linear + Sigmoid
    -- D: 4 Linear (weight, bias) among 11 modules
    assert.equal("14\t8\t5\t11\t8\t3\n", stdout)
  end)

  it("rejects bad options with one line naming them", function()
    local cases = {
      {{"--epochs", "-3"}, "--epochs must be at least 1, not '-3'"},
      {{"--size", "abc"}, "--size needs an integer, not 'abc'"},
      {{"--batch", "0"}, "--batch must be at least 1"},
      {{"--frob"}, "unknown option '--frob'"},
      {{"--device", "tpu"}, "--device must be one of cpu, cuda, auto"},
      {{"--epochs"}, "--epochs needs a value"},
      {{"--sample-every", "0"}, "--sample-every must be at least 1, not '0'"},
      {{"--checkpoint-minutes", "x"}, "--checkpoint-minutes needs a number, not 'x'"},
    }
    for _, c in ipairs(cases) do
      local args = {script}
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      local code, _, err = run(args)
      assert.equal(2, code, err)
      assert.truthy(err:find(c[2], 1, true), err)
      local _, nl = err:gsub("\n", "")
      assert.equal(1, nl, err)
    end
  end)

  it("lists its options with --help", function()
    local code, out = run({script, "--help"})
    assert.equal(0, code)
    for _, o in ipairs{"--data", "--size", "--epochs", "--batch", "--latent", "--lr", "--beta1",
                       "--sample-every", "--samples", "--out", "--seed", "--device"} do
      assert.truthy(out:find(o, 1, true), o)
    end
    assert.truthy(out:find("default: 500", 1, true))
    -- a flag shows how to turn it off, and its default in words
    assert.truthy(out:find("--keras-predict, --no-keras-predict\n", 1, true), out)
    assert.truthy(out:find("(default: on)", 1, true), out)
    assert.truthy(out:find("--watch, --no-watch ", 1, true), out)
    assert.falsy(out:find("(default: true)", 1, true), out)
  end)

  it("says where to put images when the data folder is missing", function()
    local out = util.tmpdir()
    local code, _, err = run({script, "--data", out .. "/none", "--out", out})
    util.rmdir(out)
    assert.equal(1, code)
    assert.truthy(err:find("none", 1, true), err)
  end)
end)
