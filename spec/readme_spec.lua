-- The README's Lua examples are code users paste: they must run as written.
describe("the README", function()
  it("has a tensor tour that runs as written", function()
    local f = assert(io.open("README.md"))
    local text = f:read("a")
    f:close()
    local blocks = {}
    for code in text:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = code end
    assert.is_true(#blocks >= 1)
    for i, code in ipairs(blocks) do
      local chunk = assert(load(code, "=README block " .. i))
      local ok, err = pcall(chunk)
      assert(ok, err)
    end
  end)
end)
