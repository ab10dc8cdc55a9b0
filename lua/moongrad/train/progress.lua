-- moongrad.train.progress: what fit prints while it trains, on stdout.
--
--   progress = "auto" (default)  a bar redrawn in place when stdout is a
--                                terminal or fit runs in a notebook, else
--                                one summary line per epoch
--   progress = true              the bar, terminal or not
--   progress = false             one summary line per epoch
--   progress = "quiet"           nothing
--
-- The bar (redrawn with \r at most ten times a second, and on the last batch):
--   epoch 3/10 [##########..........] 120/469  loss 0.4312  5,230 samples/s  ETA 0:12
-- and when the epoch ends it is replaced by the epoch's summary line:
--   epoch 3/10  train_loss 0.4312  train_accuracy 0.8421  val_loss 0.4012  ...  12.3s
--
-- In a notebook (the moongrad kernel), "auto" and true show two outputs
-- updated in place instead (update_display_data): the bar as HTML, above
-- it the summary lines of the epochs done, and the training curves
-- (plot.training_curves) redrawn at the end of each epoch.
--
-- Whether stdout is a terminal is asked once per process with
-- os.execute("test -t 1") (the shell inherits our stdout), and cached.
-- Wall time comes from mg.clock (monotonic; Lua's os.clock is CPU time,
-- which multithreaded kernels inflate).
local mg = require "moongrad"
local os_execute = os.execute
local type, ipairs, tostring, error, setmetatable = type, ipairs, tostring, error, setmetatable
local floor, max, min, huge = math.floor, math.max, math.min, math.huge
local fmt, rep, concat = string.format, string.rep, table.concat

local progress = {}

-- Seconds on a monotonic wall clock.
progress.now = mg.clock
local now = progress.now

local tty_cache
-- Whether stdout is a terminal (asked once).
function progress.stdout_is_tty()
  if tty_cache == nil then
    local ok = os_execute("test -t 1")
    tty_cache = ok == true or ok == 0
  end
  return tty_cache
end

-- 1234567 -> "1,234,567"
local function thousands(n)
  local s = tostring(floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1"))
end

local function clock(seconds)
  if seconds ~= seconds or seconds == huge then return "?" end
  seconds = floor(seconds + 0.5)
  local h, m, s = floor(seconds / 3600), floor(seconds / 60) % 60, seconds % 60
  if h > 0 then return fmt("%d:%02d:%02d", h, m, s) end
  return fmt("%d:%02d", m, s)
end

local function num(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == huge then return "inf" elseif v == -huge then return "-inf" end
  if v ~= 0 and (math.abs(v) < 1e-3 or math.abs(v) >= 1e5) then return fmt("%.3e", v) end
  return fmt("%.4f", v)
end
progress.format_number = num

-- The epoch summary: "epoch 3/10  train_loss 0.4312 ...  12.3s". columns
-- lists the record's keys in order (epoch and time are placed by hand).
function progress.summary(record, epochs, columns)
  local parts = {fmt("epoch %d/%d", record.epoch, epochs)}
  for _, k in ipairs(columns) do
    local v = record[k]
    if k ~= "epoch" and k ~= "time" and v ~= nil then
      parts[#parts + 1] = k == "lr" and fmt("lr %.3g", v) or (k .. " " .. num(v))
    end
  end
  if record.time then parts[#parts + 1] = fmt("%.1fs", record.time) end
  return concat(parts, "  ")
end

local Progress = {}  -- in a terminal or a log
Progress.__index = Progress
local Live = {}      -- in a notebook (below)
Live.__index = Live

-- progress.new(mode, out): mode as above; out a file (io.stdout).
function progress.new(mode, out)
  if mode == nil then mode = "auto" end
  if mode ~= "auto" and mode ~= true and mode ~= false and mode ~= "quiet" then
    error(fmt("fit: progress must be \"auto\", true, false or \"quiet\", got %s",
              tostring(mode)), 3)
  end
  local display = (mode == true or mode == "auto") and progress.notebook()
  if display then
    return setmetatable({display = display, lines = {}}, Live)
  end
  local bar = mode == true or (mode == "auto" and progress.stdout_is_tty())
  return setmetatable({out = out or io.stdout, bar = bar, quiet = mode == "quiet",
                       width = 20, drawn = false}, Progress)
end

function Progress:epoch_begin(epoch, epochs, n_batches)
  self.epoch, self.epochs, self.n = epoch, epochs, n_batches
  self.t0, self.last_draw, self.samples = now(), -huge, 0
end

-- The bar's facts after batch b: "120/469  loss 0.4312  5,230 samples/s
-- ETA 0:12", and the filled share (0..1, nil when the length is unknown).
local function status(self, b, mean_loss, b0, t)
  local n, elapsed = self.n, t - self.t0
  local done = b - (b0 or 1) + 1
  local rate = elapsed > 0 and thousands(self.samples / elapsed) or "?"
  local eta = elapsed > 0 and n and (n - b) * elapsed / done or huge
  local text = fmt("%d/%s  loss %s  %s samples/s  ETA %s", b, n and tostring(n) or "?",
                   num(mean_loss), rate, clock(eta))
  return text, n and n > 0 and min(1, b / n) or nil
end

-- After batch b of the epoch: mean loss so far and samples in this batch.
-- b0 is the first batch this process ran (after a resume, earlier batches
-- do not count towards the speed).
function Progress:batch(b, mean_loss, samples, b0)
  self.samples = self.samples + samples
  if not self.bar then return end
  local t = now()
  if t - self.last_draw < 0.1 and b ~= self.n then return end
  self.last_draw = t
  local text, share = status(self, b, mean_loss, b0, t)
  local filled = floor(self.width * (share or 0))
  local line = fmt("epoch %d/%d [%s%s] %s", self.epoch, self.epochs, rep("#", filled),
                   rep(".", self.width - filled), text)
  local pad = max(0, (self.len or 0) - #line)
  self.out:write("\r", line, rep(" ", pad))
  self.out:flush()
  self.len, self.drawn = #line, true
end

-- Replaces the bar (or prints) the epoch's summary line.
function Progress:epoch_end(record, columns, _)
  if self.quiet then return end
  local line = progress.summary(record, self.epochs, columns)
  if self.drawn then
    self.out:write("\r", line, rep(" ", max(0, (self.len or 0) - #line)), "\n")
  else
    self.out:write(line, "\n")
  end
  self.out:flush()
  self.drawn, self.len = false, 0
end

-- Ends a half-drawn bar's line before an error message is printed.
function Progress:abort()
  if self.drawn then
    self.out:write("\n")
    self.out:flush()
    self.drawn = false
  end
end

---------------------------------------------------------------------------
-- In a notebook: two outputs redrawn in place (display handles) — the bar
-- with the epochs' summary lines, and the training curves, redrawn as each
-- epoch ends.

local NOTEBOOK_WIDTH = 760

local function html_escape(s)
  return (s:gsub("[&<>]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }))
end

-- A value mg.display shows as the given HTML and text.
local function rich(html, text)
  return setmetatable({}, { __display = function() return { ["text/html"] = html, ["text/plain"] = text } end })
end

-- The bar's output: the summary lines so far, then the running epoch.
function Live:draw(text, share)
  local lines = concat(self.lines, "\n")
  local plain, html = lines, "<pre style=\"margin:0\">" .. html_escape(lines) .. "</pre>"
  if text then
    local head = fmt("epoch %d/%d", self.epoch, self.epochs)
    plain = (lines ~= "" and lines .. "\n" or "") .. head .. "  " .. text
    html = html .. fmt('<div><code>%s</code> <progress max="1" value="%.4f" style="width:16em;' ..
                       'vertical-align:middle"></progress> <code>%s</code></div>',
                       head, share or 0, html_escape(text))
  end
  local v = rich('<div class="moongrad-progress">' .. html .. "</div>", plain)
  if self.handle then self.handle:update(v) else self.handle = self.display.display(v) end
end

function Live:epoch_begin(epoch, epochs, n_batches)
  Progress.epoch_begin(self, epoch, epochs, n_batches)
  self:draw(fmt("0/%s", n_batches and tostring(n_batches) or "?"), 0)
end

-- Messages to the notebook cost more than a terminal's \r: a few a second.
function Live:batch(b, mean_loss, samples, b0)
  self.samples = self.samples + samples
  local t = now()
  if t - self.last_draw < 0.25 and b ~= self.n then return end
  self.last_draw = t
  self:draw(status(self, b, mean_loss, b0, t))
end

function Live:epoch_end(record, columns, history)
  self.lines[#self.lines + 1] = progress.summary(record, self.epochs, columns)
  self:draw(nil)
  if history then
    -- a notebook's output column is about 780 pixels wide
    local ok, svg = pcall(require("moongrad.plot").training_curves, history, nil,
                          {width = NOTEBOOK_WIDTH, height = 320})
    if ok then
      if self.curves then self.curves:update(svg) else self.curves = self.display.display(svg) end
    end
  end
end

-- Leaves the summary lines without the half-done epoch's bar.
function Live:abort()
  if self.handle then self:draw(nil) end
end

-- Whether fit is running where mg.display shows in place (a notebook).
local function notebook()
  local display = package.loaded["moongrad.display"]
  return display and display.is_live() and display or nil
end
progress.notebook = notebook

return progress
