-- moongrad.display: how values show where more than text can (a Jupyter
-- notebook), as MIME bundles, and mg.display(x).
--
--   mg.display(img)             -- an image [C, H, W] or a batch [N, C, H, W]: a PNG
--   mg.display(plot.lines{...}) -- a chart (SVG text): the drawing
--   mg.display(t)               -- a tensor: a table; anything else: its text
--   local h = mg.display(x); h:update(y)   -- redraws that output in place
--
-- In the kernel each call shows in the cell at once; elsewhere (a script,
-- the REPL) it prints the text form. A cell's own result goes through
-- bundle() too, without the image form (a [3, 4, 5] tensor stays numbers
-- unless displayed on purpose). A value whose metatable has __display
-- (a function returning {[mime type] = text}) chooses its own forms.
local mg = require "moongrad"
local repl = require "moongrad.repl"

local type, tostring, getmetatable, pairs = type, tostring, getmetatable, pairs
local fmt, concat, byte, min, ceil = string.format, table.concat, string.byte, math.min, math.ceil

local M = {}

---------------------------------------------------------------------------
-- Encodings.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64 = {}
for i = 1, 64 do b64[i - 1] = B64:sub(i, i) end

-- RFC 4648 base64 of a byte string (what JSON carries binary MIME data in).
function M.base64(s)
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = b64[v >> 18] .. b64[v >> 12 & 63] .. b64[v >> 6 & 63] .. b64[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = byte(s, n) << 16
    out[#out + 1] = b64[v >> 18] .. b64[v >> 12 & 63] .. "=="
  elseif rest == 2 then
    local a, b = byte(s, n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = b64[v >> 18] .. b64[v >> 12 & 63] .. b64[v >> 6 & 63] .. "="
  end
  return concat(out)
end

local function escape(s)
  return (s:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

---------------------------------------------------------------------------
-- Tensors as HTML tables: up to 2 dims, summarised like the REPL's text
-- (the first and last EDGE rows and columns of a big one).

local EDGE, LIMIT = 5, 20 -- a dimension longer than LIMIT shows EDGE at each end

local function shown_indices(n)
  if n <= LIMIT then
    local all = {}
    for i = 1, n do all[i] = i end
    return all
  end
  local idx = {}
  for i = 1, EDGE do idx[#idx + 1] = i end
  idx[#idx + 1] = false -- the "…" row or column
  for i = n - EDGE + 1, n do idx[#idx + 1] = i end
  return idx
end

-- Integers (every integer dtype) and bools as they are; floats to 4 digits.
local function cell(v)
  if math.type(v) == "float" then return fmt("%.4g", v) end
  return tostring(v)
end

local function tensor_html(t)
  local shape, dtype = t:shape(), t:dtype()
  local caption = fmt("<caption>%s tensor of shape [%s]</caption>", dtype, concat(shape, ","))
  if #shape > 2 or t:numel() == 0 then
    return fmt('<table class="moongrad-tensor">%s<tr><td><pre>%s</pre></td></tr></table>',
               caption, escape(repl.show(t)))
  end
  local m = #shape == 2 and t or t:reshape(1, -1)
  if #shape == 0 then m = t:reshape(1, 1) end
  local rows, cols = shown_indices(m:size(1)), shown_indices(m:size(2))
  local out = { '<table class="moongrad-tensor">', caption }
  for _, i in ipairs(rows) do
    local tds = {}
    for _, j in ipairs(cols) do
      tds[#tds + 1] = (i and j) and "<td>" .. cell(m[{ i, j }]) .. "</td>" or "<td>…</td>"
    end
    out[#out + 1] = "<tr>" .. concat(tds) .. "</tr>"
  end
  out[#out + 1] = "</table>"
  return concat(out, "\n")
end

-- The image form of t: itself when [C, H, W] with 1, 3 or 4 channels, a
-- grid of up to 8 columns (2 pixels apart, as torchvision's make_grid) for
-- a batch [N, C, H, W]; nil when t is not an image's shape or dtype.
local function as_image(t)
  local dt = t:dtype()
  if dt ~= "uint8" and dt ~= "float32" and dt ~= "float64" then return nil end
  local s = t:shape()
  local C = s[#s - 2]
  if not (#s == 3 or #s == 4) or not (C == 1 or C == 3 or C == 4) or s[#s] < 1 or s[#s - 1] < 1 then
    return nil
  end
  if #s == 3 then return t end
  local N, H, W, P = s[1], s[3], s[4], 2
  if N == 0 then return nil end
  local ncol = min(8, N)
  local nrow = ceil(N / ncol)
  local grid = mg.zeros({ C, nrow * (H + P) + P, ncol * (W + P) + P }, dt)
  for n = 1, N do
    local r, c = (n - 1) // ncol, (n - 1) % ncol
    grid:narrow(2, r * (H + P) + P + 1, H):narrow(3, c * (W + P) + P + 1, W):copy_(t:select(1, n))
  end
  return grid
end

---------------------------------------------------------------------------
-- Bundles.

-- bundle(v [, {image = true}]) -> {[mime type] = text}: text/plain always;
-- a tensor adds text/html, or with image = true and an image's shape
-- image/png instead (and a one-line text); an SVG string (plot.*'s charts)
-- adds image/svg+xml.
function M.bundle(v, opts)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__display) == "function" then
    local data = mt.__display(v)
    if type(data) ~= "table" then
      error(fmt("display: __display must return a table of MIME type -> text, got %s", type(data)), 2)
    end
    local copy = {}
    for k, x in pairs(data) do copy[k] = tostring(x) end
    copy["text/plain"] = copy["text/plain"] or repl.show(v)
    return copy
  end
  if type(v) == "string" and v:match("^%s*<svg[%s>]") then
    local w, h = v:match('width="(%d+)"'), v:match('height="(%d+)"')
    return { ["image/svg+xml"] = v,
             ["text/plain"] = fmt("<SVG chart%s>", w and h and fmt(" %sx%s", w, h) or "") }
  end
  if mg.is_tensor(v) then
    local img = opts and opts.image and as_image(v)
    if img then
      -- Only the picture: a notebook prefers HTML to PNG when it has both.
      return { ["image/png"] = M.base64(mg.image.encode(img)),
               ["text/plain"] = fmt("<%s image%s of shape [%s]>", v:dtype(), v:dim() == 4 and "s" or "",
                                    concat(v:shape(), ",")) }
    end
    return { ["text/plain"] = repl.show(v), ["text/html"] = tensor_html(v) }
  end
  return { ["text/plain"] = repl.show(v) }
end

-- Where mg.display sends a bundle: the kernel sets a function
-- sink(data, display_id, update) that publishes display_data (update
-- false) or update_display_data for that id; with none set, values print.
local sink

function M.set_sink(fn) sink = fn end

-- Whether displays show in place (in a notebook) rather than as text.
function M.is_live() return sink ~= nil end

-- Display ids: unique within the kernel's process and across restarts
-- (a table's address and the time; math.random would move a user's
-- seeded sequence).
local serial = 0
local session = fmt("%x%s", os.time(), tostring({}):match("(%x+)$") or "0")

local Handle = {}
Handle.__index = Handle
Handle.__name = "moongrad.DisplayHandle"

-- h:update(v): replaces what the display shows with v (in the notebook,
-- where it first appeared); elsewhere prints v's text as display does.
-- Sends v's richest bundle to the sink, or prints its text.
local function emit(v, id, update)
  local data = M.bundle(v, { image = true })
  if sink then sink(data, id, update) else print(data["text/plain"]) end
end

function Handle:update(v)
  emit(v, self.id, true)
  return self
end

-- mg.display(...): shows each value in its richest form and returns, for
-- each, a handle whose :update(v) redraws that output in place.
function M.display(...)
  local handles = {}
  for i = 1, select("#", ...) do
    serial = serial + 1
    local h = setmetatable({ id = fmt("moongrad-%s-%d", session, serial) }, Handle)
    emit((select(i, ...)), h.id, false)
    handles[i] = h
  end
  return table.unpack(handles, 1, select("#", ...))
end

return M
