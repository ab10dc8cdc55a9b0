-- moongrad.plot: line charts as SVG files, written in plain Lua.
--
--   local plot = require "moongrad.plot"
--   plot.training_curves(history, "run/curves.svg", {title = "MLP on Fashion-MNIST"})
--   plot.lines{series = {{name = "SGD", x = steps, y = losses}, ...},
--              path = "optimizers.svg", title = "Loss", xlabel = "step",
--              ylabel = "loss", log_y = true}
--
-- training_curves draws a history from train.fit (or any table of the same
-- shape) as side-by-side panels: loss per epoch (train and val), accuracy
-- per epoch (when the history has it) and the learning rate per step (when
-- recorded). lines draws any series on one panel. confusion_matrix draws a
-- classifier's counts (true class per row, predicted per column) as a
-- heatmap with each class's accuracy. All return the SVG text and write it
-- to path when one is given.
--
-- Axes get "nice" ticks (1, 2 or 5 times a power of ten, or powers of ten
-- on a log axis), a light grid and labels; each series a color from the
-- Tableau palette and an entry in the legend above the panel. Non-finite
-- points are skipped (the line breaks there); on a log axis, points <= 0.
local type, ipairs, tostring, error, select = type, ipairs, tostring, error, select
local floor, ceil, log, max, min, abs, huge = math.floor, math.ceil, math.log, math.max,
  math.min, math.abs, math.huge
local fmt, concat = string.format, table.concat
local require = require

local plot = {}

plot.colors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

local FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                       ['"'] = "&quot;"}))
end

local function finite(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end

-- Coordinates with two decimals: small files, no "nan" ever (callers pass
-- finite values only).
local function c(v) return fmt("%.2f", v) end

-- Ticks ----------------------------------------------------------------------

-- The "nice" number near x: 1, 2, 5 or 10 times a power of ten.
local function nice(x, round)
  local e = floor(log(x, 10))
  local f = x / 10 ^ e
  local nf
  if round then
    nf = f < 1.5 and 1 or f < 3 and 2 or f < 7 and 5 or 10
  else
    nf = f <= 1 and 1 or f <= 2 and 2 or f <= 5 and 5 or 10
  end
  return nf * 10 ^ e
end

local function tick_label(v, step)
  if abs(v) < step * 1e-6 then return "0" end
  local s
  if abs(v) >= 1e5 or step < 1e-3 then
    s = fmt("%.6g", v)
    local m, e = s:match("^(.-)e([-+]%d+)$")
    if not m then
      s = fmt("%.1e", v)
      m, e = s:match("^(.-)e([-+]%d+)$")
    end
    local mant = tonumber(m)
    local rounded = fmt("%.2g", mant)
    return rounded .. "e" .. tostring(tonumber(e))
  end
  local decimals = max(0, -floor(log(step, 10) + 1e-9))
  return fmt("%." .. decimals .. "f", v)
end

-- Linear axis: limits rounded out to ticks (or, with exact, the data's
-- limits), and the ticks inside them.
local function linear_axis(lo, hi, n, integer, exact)
  if lo == hi then
    local d = lo == 0 and 1 or abs(lo) * 0.1
    if integer then d = 1 end
    lo, hi = lo - d, hi + d
  end
  local step = exact and nice((hi - lo) / (n - 1), true) or nice(nice(hi - lo, false) / (n - 1), true)
  if integer and (step < 1 or hi - lo <= 12) then step = 1 end
  local a, b = floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step
  local first = a
  if exact then
    first = ceil(lo / step - 1e-9) * step
    a, b = lo, hi
  end
  local ticks = {}
  for i = 0, floor((b - first) / step + 1e-9) do
    local v = first + i * step
    ticks[#ticks + 1] = {v = v, label = tick_label(v, step)}
  end
  return {lo = a, hi = b, ticks = ticks}
end

-- The largest (down) or smallest (up) of 1, 2, 5 times a power of ten
-- beyond v > 0.
local function log_round(v, up)
  local e = floor(log(v, 10) + 1e-9)
  local best
  for k = e - 1, e + 1 do
    for _, m in ipairs{1, 2, 5} do
      local c = m * 10 ^ k
      if up and c >= v * (1 - 1e-9) and (not best or c < best) then best = c end
      if not up and c <= v * (1 + 1e-9) and (not best or c > best) then best = c end
    end
  end
  return best
end

-- Log axis (base 10): limits at 1, 2 or 5 times a power of ten; ticks at
-- the powers of ten, and at 2 and 5 times them when the range spans less
-- than three decades.
local function log_axis(lo, hi)
  local a, b = log_round(lo, false), log_round(hi, true)
  if a == b then a, b = log_round(a * 0.99, false), log_round(b * 1.01, true) end
  local ea, eb = floor(log(a, 10) + 1e-9), floor(log(b, 10) + 1e-9)
  local dense = log(b / a, 10) < 3
  local ticks = {}
  for e = ea, eb do
    for _, m in ipairs(dense and {1, 2, 5} or {1}) do
      local v = m * 10 ^ e
      if v >= a * (1 - 1e-9) and v <= b * (1 + 1e-9) then
        local label = (e >= -3 and e <= 4) and tick_label(v, 10 ^ min(e, 0))
                      or (m == 1 and "1e" .. e or m .. "e" .. e)
        ticks[#ticks + 1] = {v = v, label = label, minor = m ~= 1}
      end
    end
  end
  return {lo = a, hi = b, ticks = ticks, log = true}
end

-- Panels ---------------------------------------------------------------------

local function range(series, field, positive)
  local lo, hi = huge, -huge
  for _, s in ipairs(series) do
    for _, v in ipairs(s[field]) do
      if finite(v) and (not positive or v > 0) then
        lo, hi = min(lo, v), max(hi, v)
      end
    end
  end
  if lo > hi then return nil end
  return lo, hi
end

local function all_integers(series)
  for _, s in ipairs(series) do
    for _, v in ipairs(s.x) do
      if finite(v) and v ~= floor(v) then return false end
    end
  end
  return true
end

-- Draws one panel into out (a list of SVG lines) in the box (x, y, w, h).
-- p = {series = {{name, x, y, color}}, title, xlabel, ylabel, log_y, log_x,
-- x_labels}: x_labels names the x values 1..K (a categorical axis).
local function panel(out, box, p)
  local L, R, T, B = 68, 18, 54, 46
  local px, py = box.x + L, box.y + T
  local pw, ph = box.w - L - R, box.h - T - B
  local series = p.series
  out[#out + 1] = fmt('<text x="%s" y="%s" font-size="15" font-weight="bold" ' ..
                      'text-anchor="middle" %s>%s</text>', c(px + pw / 2), c(box.y + 20),
                      FONT, esc(p.title or ""))
  -- legend: a row of swatches under the title, centred
  local items, total = {}, 0
  for i, s in ipairs(series) do
    local wdt = 25 + 7.2 * #tostring(s.name or ("series " .. i)) + 20
    items[i], total = wdt, total + wdt
  end
  local lx = px + max(0, (pw - total) / 2)
  for i, s in ipairs(series) do
    local ly = box.y + 38
    if s.ring then
      out[#out + 1] = fmt('<circle cx="%s" cy="%s" r="6" fill="none" stroke="%s" ' ..
                          'stroke-width="2.5"/>', c(lx + 10), c(ly), s.color)
    elseif s.line == false then
      out[#out + 1] = fmt('<circle cx="%s" cy="%s" r="3.5" fill="%s"/>', c(lx + 10), c(ly), s.color)
    else
      out[#out + 1] = fmt('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>',
                          c(lx), c(ly), c(lx + 20), c(ly), s.color,
                          s.dash and (' stroke-dasharray="' .. s.dash .. '"') or "")
    end
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" %s>%s</text>', c(lx + 25),
                        c(ly + 4), FONT, esc(s.name or ("series " .. i)))
    lx = lx + items[i]
  end

  local xlo, xhi = range(series, "x", p.log_x)
  local ylo, yhi = range(series, "y", p.log_y)
  if not xlo or not ylo then
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="13" fill="#777" text-anchor="middle" ' ..
                        '%s>no data</text>', c(px + pw / 2), c(py + ph / 2), FONT)
    return
  end
  local xa
  if p.x_labels then -- categories at 1..K, half a slot of margin each side
    xa = {lo = 0.5, hi = #p.x_labels + 0.5, ticks = {}}
    for k, name in ipairs(p.x_labels) do xa.ticks[k] = {v = k, label = tostring(name)} end
  elseif p.log_x then
    xa = log_axis(xlo, xhi)
  else
    xa = linear_axis(xlo, xhi, 6, all_integers(series), true)
  end
  local ya = p.log_y and log_axis(ylo, yhi) or linear_axis(ylo, yhi, 6)
  local inset = 6          -- so that markers at the ends stay clear of the frame
  local function sx(v)
    if xa.log then
      return px + inset + (log(v, 10) - log(xa.lo, 10)) / (log(xa.hi, 10) - log(xa.lo, 10))
        * (pw - 2 * inset)
    end
    return px + inset + (v - xa.lo) / (xa.hi - xa.lo) * (pw - 2 * inset)
  end
  local function sy(v)
    if ya.log then
      return py + ph - (log(v, 10) - log(ya.lo, 10)) / (log(ya.hi, 10) - log(ya.lo, 10)) * ph
    end
    return py + ph - (v - ya.lo) / (ya.hi - ya.lo) * ph
  end

  out[#out + 1] = fmt('<rect x="%s" y="%s" width="%s" height="%s" fill="#fbfbfb" stroke="none"/>',
                      c(px), c(py), c(pw), c(ph))
  for _, t in ipairs(ya.ticks) do
    local y = sy(t.v)
    out[#out + 1] = fmt('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>',
                        c(px), c(y), c(px + pw), c(y), t.minor and "#f0f0f0" or "#e3e3e3")
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="11" text-anchor="end" fill="#333" %s>%s</text>',
                        c(px - 6), c(y + 4), FONT, esc(t.label))
  end
  for _, t in ipairs(xa.ticks) do
    local x = sx(t.v)
    out[#out + 1] = fmt('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e3e3e3" stroke-width="1"/>',
                        c(x), c(py), c(x), c(py + ph))
    out[#out + 1] = fmt('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#555" stroke-width="1"/>',
                        c(x), c(py + ph), c(x), c(py + ph + 4))
    -- a log axis over more than two decades names its powers of ten only
    if not t.minor or not xa.log or xa.hi / xa.lo <= 100 * (1 + 1e-9) then
      out[#out + 1] = fmt('<text x="%s" y="%s" font-size="11" text-anchor="middle" fill="#333" %s>%s</text>',
                          c(x), c(py + ph + 17), FONT, esc(t.label))
    end
  end
  out[#out + 1] = fmt('<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#555" ' ..
                      'stroke-width="1"/>', c(px), c(py), c(pw), c(ph))
  if p.xlabel then
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" text-anchor="middle" %s>%s</text>',
                        c(px + pw / 2), c(py + ph + 36), FONT, esc(p.xlabel))
  end
  if p.ylabel then
    local x, y = box.x + 16, py + ph / 2
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" text-anchor="middle" ' ..
                        'transform="rotate(-90 %s %s)" %s>%s</text>', c(x), c(y), c(x), c(y),
                        FONT, esc(p.ylabel))
  end

  -- the series, clipped to the plot area, broken at non-finite points
  out[#out + 1] = fmt('<g clip-path="url(#%s)">', p.clip_id)
  out[#out + 1] = fmt('<clipPath id="%s"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath>',
                      p.clip_id, c(px - 4), c(py - 4), c(pw + 8), c(ph + 8))
  for _, s in ipairs(series) do
    local segs, cur, npts = {}, {}, 0
    for i = 1, min(#s.x, #s.y) do
      local xv, yv = s.x[i], s.y[i]
      if finite(xv) and finite(yv) and (not ya.log or yv > 0) and (not xa.log or xv > 0) then
        cur[#cur + 1] = c(sx(xv)) .. "," .. c(sy(yv))
        npts = npts + 1
      elseif #cur > 0 then
        segs[#segs + 1], cur = cur, {}
      end
    end
    if #cur > 0 then segs[#segs + 1] = cur end
    for _, seg in ipairs(s.line == false and {} or segs) do
      out[#out + 1] = fmt('<polyline fill="none" stroke="%s" stroke-width="2" ' ..
                          'stroke-linejoin="round"%s points="%s"/>', s.color,
                          s.dash and (' stroke-dasharray="' .. s.dash .. '"') or "", concat(seg, " "))
    end
    if (npts <= 40 or s.line == false) and s.markers ~= false then
      for _, seg in ipairs(segs) do
        for _, pt in ipairs(seg) do
          local x, y = pt:match("([^,]+),([^,]+)")
          if s.ring then
            out[#out + 1] = fmt('<circle cx="%s" cy="%s" r="6" fill="none" stroke="%s" ' ..
                                'stroke-width="2.5"/>', x, y, s.color)
          else
            out[#out + 1] = fmt('<circle cx="%s" cy="%s" r="3" fill="%s"/>', x, y, s.color)
          end
        end
      end
    end
  end
  out[#out + 1] = "</g>"
end

-- panels in a grid of `columns` (default: all in one row).
local function document(width, height, title, panels, columns)
  local out = {
    fmt('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">',
        width, height, width, height),
    fmt('<rect width="%d" height="%d" fill="white"/>', width, height),
  }
  local top = 0
  if title then
    out[#out + 1] = fmt('<text x="%s" y="26" font-size="18" font-weight="bold" ' ..
                        'text-anchor="middle" %s>%s</text>', c(width / 2), FONT, esc(title))
    top = 34
  end
  columns = min(columns or #panels, #panels)
  local rows = ceil(#panels / columns)
  local pw, ph = width / columns, (height - top) / rows
  for i, p in ipairs(panels) do
    p.clip_id = "plot" .. i
    local col, row = (i - 1) % columns, (i - 1) // columns
    panel(out, {x = col * pw, y = top + row * ph, w = pw, h = ph}, p)
  end
  out[#out + 1] = "</svg>"
  return concat(out, "\n") .. "\n"
end

local function write(path, text, who)
  if path == nil then return end
  if type(path) ~= "string" then -- a number would become the file "3"
    error(fmt("%s: path must be a file name (a string), got %s", who, type(path)), 3)
  end
  -- whole and atomic, a FIFO or directory refused (runtime/io_file.c)
  local ok, err = require("moongrad.core")._write_file(path, text, who)
  if not ok then error(err, 3) end
end

local function check_series(who, series)
  if type(series) ~= "table" or #series == 0 then
    error(who .. ": series must be a non-empty list of {name = ..., x = {...}, y = {...}}", 3)
  end
  for i, s in ipairs(series) do
    if type(s) ~= "table" or type(s.y) ~= "table" then
      error(fmt("%s: series[%d] needs y, a list of numbers", who, i), 3)
    end
    if s.x == nil then
      local x = {}
      for j = 1, #s.y do x[j] = j end
      s.x = x
    elseif type(s.x) ~= "table" then
      error(fmt("%s: series[%d].x must be a list of numbers", who, i), 3)
    end
    s.color = s.color or plot.colors[(i - 1) % #plot.colors + 1]
  end
end

-- plot.lines{series = {{name =, x =, y =, color =, dash =, markers =, line =}}, path =, title =,
-- xlabel =, ylabel =, log_y = false, width = 760, height = 480} --> svg text.
-- x defaults to 1..#y. Markers are drawn for series of up to 40 points
-- unless markers = false; line = false draws markers only (a scatter).
function plot.lines(o)
  if type(o) ~= "table" then error("lines: expects an options table", 2) end
  local series = {}
  for i, s in ipairs(o.series or {}) do
    series[i] = {name = s.name, x = s.x, y = s.y, color = s.color, dash = s.dash,
                 markers = s.markers, line = s.line}
  end
  check_series("lines", series)
  local svg = document(o.width or 760, o.height or 480, nil, {{
    series = series, title = o.title, xlabel = o.xlabel, ylabel = o.ylabel, log_y = o.log_y}})
  write(o.path, svg, "lines")
  return svg
end

-- plot.panels{panels = {{title =, xlabel =, ylabel =, series = {...}, log_x =, log_y =,
-- x_labels =}, ...}, columns =, path =, title =, width =, height =} --> svg text:
-- several panels in a grid (columns per row, default 3), each drawn as
-- lines draws one. A series with ring = true is drawn as open rings (to
-- mark chosen points over a scatter); x_labels makes a categorical x axis
-- (x values 1..K).
function plot.panels(o)
  if type(o) ~= "table" or type(o.panels) ~= "table" or #o.panels == 0 then
    error("panels: expects {panels = {{series = {...}, ...}, ...}}", 2)
  end
  local ps = {}
  for i, p in ipairs(o.panels) do
    local series = {}
    for k, sr in ipairs(p.series or {}) do
      series[k] = {name = sr.name, x = sr.x, y = sr.y, color = sr.color, dash = sr.dash,
                   markers = sr.markers, line = sr.line, ring = sr.ring}
    end
    check_series(fmt("panels: panel %d", i), series)
    ps[i] = {series = series, title = p.title, xlabel = p.xlabel, ylabel = p.ylabel,
             log_x = p.log_x, log_y = p.log_y, x_labels = p.x_labels}
  end
  local columns = min(o.columns or 3, #ps)
  local rows = ceil(#ps / columns)
  local svg = document(o.width or 380 * columns, o.height or 340 * rows + (o.title and 34 or 0),
                       o.title, ps, columns)
  write(o.path, svg, "panels")
  return svg
end

local function epoch_series(history, name, key, color, dash)
  local x, y, any = {}, {}, false
  for i, rec in ipairs(history.epochs) do
    x[i], y[i] = rec.epoch or i, rec[key]
    if y[i] == nil then y[i] = 0 / 0 else any = true end
  end
  if any then return {name = name, x = x, y = y, color = color, dash = dash} end
end

-- plot.training_curves(history, path, {title = ..., width, height}) --> svg text
function plot.training_curves(history, path, opts)
  if type(history) ~= "table" or type(history.epochs) ~= "table" then
    error("training_curves: expects a history from train.fit ({epochs = {...}, lr = {...}})", 2)
  end
  opts = opts or {}
  local blue, orange = plot.colors[1], plot.colors[2]
  local panels = {}
  local function add(title, ylabel, a, b, xlabel)
    local s = {}
    s[#s + 1] = a
    s[#s + 1] = b
    if #s > 0 then
      panels[#panels + 1] = {title = title, ylabel = ylabel, xlabel = xlabel or "epoch", series = s}
    end
  end
  add("Loss", "loss", epoch_series(history, "train", "train_loss", blue),
      epoch_series(history, "validation", "val_loss", orange))
  add("Accuracy", "accuracy", epoch_series(history, "train", "train_accuracy", blue),
      epoch_series(history, "validation", "val_accuracy", orange))
  if type(history.lr) == "table" and #history.lr > 0 then
    local x = {}
    for i = 1, #history.lr do x[i] = i end
    add("Learning rate", "lr", {name = "lr", x = x, y = history.lr, color = plot.colors[3],
                                markers = false}, nil, "step")
  end
  if #panels == 0 then
    error("training_curves: the history has no train_loss, accuracy or lr to draw", 2)
  end
  local svg = document(opts.width or 400 * #panels, opts.height or 400, opts.title, panels)
  write(path, svg, "training_curves")
  return svg
end

-- plot.confusion_matrix(counts, classes, path, {title =, size =}) --> svg.
-- counts[i][j]: samples of true class i predicted as j (a table of rows or
-- a [K, K] tensor); classes: K names. A cell's shade is its share of its
-- row (so every class reads on the same scale whatever its size), with the
-- count written in it; the right margin gives each class's accuracy
-- (diagonal / row) and the title the overall accuracy.
function plot.confusion_matrix(counts, classes, path, opts)
  local who = "confusion_matrix"
  if type(counts) == "userdata" and counts.totable then counts = counts:totable() end
  if type(counts) ~= "table" or type(classes) ~= "table" or #classes == 0 or
     #counts ~= #classes then
    error(who .. ": expects K rows of K counts and K class names", 2)
  end
  opts = opts or {}
  local k = #classes
  local total, right = 0, 0
  for i = 1, k do
    local row = counts[i]
    if type(row) ~= "table" or #row ~= k then
      error(fmt("%s: row %d must hold %d counts", who, i, k), 2)
    end
    for j = 1, k do
      local v = row[j]
      if type(v) ~= "number" or v < 0 or v ~= v then
        error(fmt("%s: count [%d][%d] must be a number >= 0, got %s", who, i, j, tostring(v)), 2)
      end
      total = total + v
      if i == j then right = right + v end
    end
  end
  local cell = opts.size or max(28, min(56, floor(560 / k)))
  local longest = 0
  for i = 1, k do longest = max(longest, #tostring(classes[i])) end
  -- about 7 px a character at 12 px; the column labels are turned 60 degrees
  local label_w = 7 * longest + 10
  local left, top = label_w + 30, 80
  local bottom = floor(label_w * 0.87) + 40
  local width, height = max(480, left + k * cell + 90), top + k * cell + bottom
  local title = opts.title or "Confusion matrix"
  local out = {
    fmt('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">',
        width, height, width, height),
    fmt('<rect width="%d" height="%d" fill="white"/>', width, height),
    fmt('<text x="%s" y="26" font-size="18" font-weight="bold" text-anchor="middle" %s>%s</text>',
        c(width / 2), FONT, esc(title)),
    fmt('<text x="%s" y="48" font-size="13" text-anchor="middle" %s>accuracy %s (%d of %d); '
        .. 'shade = share of the true class</text>', c(width / 2), FONT,
        total > 0 and fmt("%.2f%%", 100 * right / total) or "-", floor(right), floor(total)),
    fmt('<text x="%s" y="%s" font-size="13" text-anchor="middle" %s>predicted</text>',
        c(left + k * cell / 2), c(top + k * cell + bottom - 12), FONT),
    fmt('<text x="14" y="%s" font-size="13" text-anchor="middle" transform="rotate(-90 14 %s)" %s>'
        .. 'true class</text>', c(top + k * cell / 2), c(top + k * cell / 2), FONT),
    fmt('<text x="%s" y="%s" font-size="12" text-anchor="start" %s>accuracy</text>',
        c(left + k * cell + 8), c(top - 8), FONT),
  }
  for i = 1, k do
    local row, n = counts[i], 0
    for j = 1, k do n = n + row[j] end
    local y = top + (i - 1) * cell
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" text-anchor="end" %s>%s</text>',
                        c(left - 6), c(y + cell / 2 + 4), FONT, esc(classes[i]))
    for j = 1, k do
      local share = n > 0 and row[j] / n or 0
      -- white to the palette's blue; the text turns white on dark cells
      local r, g, b = 255 - share * (255 - 31), 255 - share * (255 - 119), 255 - share * (255 - 180)
      local x = left + (j - 1) * cell
      out[#out + 1] = fmt('<rect x="%s" y="%s" width="%d" height="%d" fill="rgb(%d,%d,%d)" '
                          .. 'stroke="#dddddd"/>', c(x), c(y), cell, cell, floor(r), floor(g), floor(b))
      if row[j] > 0 then
        out[#out + 1] = fmt('<text x="%s" y="%s" font-size="%d" text-anchor="middle" fill="%s" %s>%s</text>',
                            c(x + cell / 2), c(y + cell / 2 + 4), cell >= 40 and 11 or 9,
                            share > 0.5 and "white" or "black", FONT, tostring(floor(row[j])))
      end
    end
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" %s>%s</text>',
                        c(left + k * cell + 8), c(y + cell / 2 + 4), FONT,
                        n > 0 and fmt("%.1f%%", 100 * row[i] / n) or "-")
  end
  for j = 1, k do
    local x = left + (j - 1) * cell + cell / 2
    local y = top + k * cell + 8
    out[#out + 1] = fmt('<text x="%s" y="%s" font-size="12" text-anchor="end" '
                        .. 'transform="rotate(-60 %s %s)" %s>%s</text>', c(x), c(y), c(x), c(y),
                        FONT, esc(classes[j]))
  end
  out[#out + 1] = "</svg>"
  local svg = concat(out, "\n") .. "\n"
  write(path, svg, who)
  return svg
end

plot._nice_axis = linear_axis   -- for specs
plot._log_axis = log_axis

return plot
