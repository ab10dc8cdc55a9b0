-- The Lua examples of the README and of the guides in docs/ are code users
-- paste: they must run as written.
local function blocks_of(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  local blocks = {}
  for code in text:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = code end
  return blocks
end

local function docs()
  local p = io.popen("ls docs/*.md")
  local list = {}
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  return list
end

describe("the documentation", function()
  local files = {"README.md"}
  for _, path in ipairs(docs()) do files[#files + 1] = path end

  it("has guides in docs/", function()
    assert.is_true(#files > 10)
  end)

  for _, path in ipairs(files) do
    it(path .. " has Lua examples that run as written", function()
      for i, code in ipairs(blocks_of(path)) do
        local chunk = assert(load(code, "=" .. path .. " block " .. i))
        local ok, err = pcall(chunk)
        assert(ok, err)
      end
    end)
  end

  it("keeps the README short", function()
    local n = 0
    for _ in io.lines("README.md") do n = n + 1 end
    assert.is_true(n <= 300, "README.md has " .. n .. " lines")
  end)

  it("links only to files that exist", function()
    for _, path in ipairs(files) do
      local dir = path:match("^(.*)/") or "."
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      for target in text:gmatch("%]%(([^)]+)%)") do
        local file = target:match("^([^#]+)")
        if file and not target:find("://", 1, true) then
          local p = io.open(dir .. "/" .. file)
          assert(p, path .. " links to " .. file .. ", which does not exist")
          p:close()
        end
      end
    end
  end)
end)
