-- moongrad.nn.conv: the layers of convolutional networks — Conv2d,
-- ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and BatchNorm2d —
-- over [N, C, H, W] inputs.
-- Thin modules over moongrad.functional, initialised as PyTorch's.
--
-- Sizes (kernel, stride, padding, dilation, output size) are a number for
-- both dims or a table {h, w}; the rest goes in a trailing options table:
--   nn.Conv2d(3, 16, 3, {padding = 1, bias = false})
--   nn.Conv2d(3, 16, 3, {padding = "same", padding_mode = "reflect"})
--   nn.ConvTranspose2d(16, 3, 4, {stride = 2, padding = 1})
--   nn.MaxPool2d(2)  nn.AvgPool2d(3, {stride = 2, padding = 1})
--   nn.AdaptiveAvgPool2d(1)  nn.BatchNorm2d(16)
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local layers = require "moongrad.nn.layers"

local is_tensor = mg.is_tensor
local type, error, pairs, tostring = type, error, pairs, tostring
local sqrt, math_type = math.sqrt, math.type
local fmt, concat = string.format, table.concat

local conv = {}

-- Constructor errors name the line that called nn.Layer(...) (see layers.lua).
local CTOR = 3

local function options(opts, name, known)
  return util.check_options(opts, name, known, CTOR + 1)
end

local function check_count(v, name, what)
  if math_type(v) ~= "integer" or v < 1 then
    error(fmt("%s: %s must be a positive integer, got %s", name, what, tostring(v)), CTOR + 1)
  end
end

-- A size as {h, w}: v is an integer >= min or a table of two of them.
local function pair(v, name, what, min)
  if math_type(v) == "integer" and v >= min then return {v, v} end
  if type(v) == "table" and #v == 2 and math_type(v[1]) == "integer" and v[1] >= min
     and math_type(v[2]) == "integer" and v[2] >= min then
    return {v[1], v[2]}
  end
  local shown = type(v) == "table" and "{" .. concat(v, ", ") .. "}" or tostring(v)
  error(fmt("%s: %s must be an integer >= %d or a table {h, w} of them, got %s",
            name, what, min, shown), CTOR + 1)
end

local function pair_str(p) return fmt("{%d, %d}", p[1], p[2]) end

local function check_input(x, name)
  if not is_tensor(x) then
    error(fmt("%s: expects a tensor, got %s", name, type(x)), 3)
  end
end

---------------------------------------------------------------------------
-- Conv2d(in, out, kernel [, {stride = 1, padding = 0, dilation = 1,
-- groups = 1, bias = true, padding_mode = "zeros", dtype}]): weight
-- [out, in/groups, kH, kW] ~ kaiming_uniform(a = sqrt(5)) =
-- U(±1/sqrt(fan_in)), bias ~ U(±1/sqrt(fan_in)), fan_in = in/groups·kH·kW.
-- padding is a size, "valid" (0) or "same" (stride 1 only: the output
-- keeps H and W; an odd total dilation·(k-1) puts the extra row or column
-- at the bottom or right, as PyTorch). padding_mode "reflect",
-- "replicate" or "circular" pads the input with F.pad by the padding and
-- then convolves without, as PyTorch.
--
-- ConvTranspose2d(in, out, kernel [, {stride = 1, padding = 0,
-- output_padding = 0, groups = 1, bias = true, dilation = 1,
-- padding_mode = "zeros", dtype}]): F.conv_transpose2d with weight
-- [in, out/groups, kH, kW], initialised as Conv2d (so fan_in =
-- out/groups·kH·kW, as torch computes it from that weight); forward(x
-- [, output_size]) picks the output_padding that gives output_size ({h, w}
-- or {N, C, h, w}), as PyTorch.
local Conv2d = Module:extend("Conv2d")
conv.Conv2d = Conv2d
local ConvTranspose2d = Module:extend("ConvTranspose2d")
conv.ConvTranspose2d = ConvTranspose2d

local padding_modes = {zeros = true, reflect = true, replicate = true, circular = true}

-- What the two convolution modules share: options, sizes and parameters.
local function conv_init(self, name, in_channels, out_channels, kernel_size, opts, transposed)
  check_count(in_channels, name, "in_channels")
  check_count(out_channels, name, "out_channels")
  opts = options(opts, name, {stride = true, padding = true, dilation = true,
                              groups = true, bias = true, dtype = true, padding_mode = true,
                              output_padding = transposed or nil})
  local dtype = opts.dtype or "float32"
  if dtype ~= "float32" and dtype ~= "float64" then
    error(fmt("%s: dtype must be \"float32\" or \"float64\", got %s", name, tostring(dtype)), CTOR)
  end
  local groups = opts.groups or 1
  check_count(groups, name, "groups")
  if in_channels % groups ~= 0 or out_channels % groups ~= 0 then
    error(fmt("%s: in_channels (%d) and out_channels (%d) must be divisible by groups (%d)",
              name, in_channels, out_channels, groups), CTOR)
  end
  local mode = opts.padding_mode or "zeros"
  if not padding_modes[mode] or (transposed and mode ~= "zeros") then
    error(fmt("%s: padding_mode must be %s, got %s", name,
              transposed and '"zeros" (the only one PyTorch supports here)'
                or '"zeros", "reflect", "replicate" or "circular"', tostring(mode)), CTOR)
  end
  self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
  self.padding_mode = mode
  self.kernel_size = pair(kernel_size, name, "kernel_size", 1)
  self.stride = pair(opts.stride or 1, name, "stride", 1)
  self.dilation = pair(opts.dilation or 1, name, "dilation", 1)
  local padding = opts.padding or 0
  if padding == "valid" then padding = 0 end
  if padding == "same" and not transposed then
    if self.stride[1] ~= 1 or self.stride[2] ~= 1 then
      error(fmt("%s: padding \"same\" needs stride 1 (as in PyTorch), got stride %s",
                name, pair_str(self.stride)), CTOR)
    end
    self.padding = "same"
  else
    self.padding = pair(padding, name, "padding", 0)
  end
  if transposed then
    self.output_padding = pair(opts.output_padding or 0, name, "output_padding", 0)
  end
  local k = self.kernel_size
  local wshape = transposed and {in_channels, out_channels // groups, k[1], k[2]}
                             or {out_channels, in_channels // groups, k[1], k[2]}
  self.weight = mg.empty(wshape, dtype):requires_grad()
  if opts.bias ~= false then self.bias = mg.empty({out_channels}, dtype):requires_grad() end
  self:reset_parameters()
end

function Conv2d:init(in_channels, out_channels, kernel_size, opts)
  return conv_init(self, "Conv2d", in_channels, out_channels, kernel_size, opts, false)
end

function ConvTranspose2d:init(in_channels, out_channels, kernel_size, opts)
  return conv_init(self, "ConvTranspose2d", in_channels, out_channels, kernel_size, opts, true)
end

local function reset_parameters(self)
  init.kaiming_uniform_(self.weight, {a = sqrt(5)})
  if self.bias then
    local bound = 1 / sqrt((init.fans(self.weight)))
    init.uniform_(self.bias, -bound, bound)
  end
end
Conv2d.reset_parameters = reset_parameters
ConvTranspose2d.reset_parameters = reset_parameters

local function check_conv_input(self, x, name)
  check_input(x, name)
  if x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error(fmt("%s: expected 4-D [N, %d, H, W] input, got shape [%s]",
              name, self.in_channels, concat(x:shape(), ",")), 3)
  end
end

-- F.pad's amounts for padding_mode: PyTorch's _reversed_padding_repeated_twice,
-- {left, right, top, bottom}, with "same" split as F.conv2d splits it.
local function pad_amounts(self)
  if self.padding ~= "same" then
    local p = self.padding
    return {p[2], p[2], p[1], p[1]}
  end
  local t = {}
  for d = 1, 2 do
    local total = self.dilation[d] * (self.kernel_size[d] - 1)
    t[d] = {total // 2, total - total // 2}
  end
  return {t[2][1], t[2][2], t[1][1], t[1][2]}
end

function Conv2d:forward(x)
  check_conv_input(self, x, "Conv2d")
  local opts = {stride = self.stride, padding = self.padding, dilation = self.dilation,
                groups = self.groups}
  local mode = self.padding_mode
  if mode ~= "zeros" then
    local p = pad_amounts(self)
    -- refused here, in the module's terms, rather than by F.pad
    for d = 1, 2 do
      local size, before, after = x:size(5 - d), p[2 * d - 1], p[2 * d]
      if (mode == "reflect" and (before >= size or after >= size))
         or (mode == "circular" and (before > size or after > size)) then
        error(fmt("Conv2d: padding_mode %q needs padding %s the input's size: padding {%d, %d} "
                  .. "of dim %d, input of shape [%s]", mode,
                  mode == "reflect" and "smaller than" or "at most", before, after, 5 - d,
                  concat(x:shape(), ",")), 2)
      end
    end
    x = F.pad(x, p, {mode = mode})
    opts.padding = 0
  end
  return F.conv2d(x, self.weight, self.bias, opts)
end

-- The output_padding that makes the output output_size, as PyTorch's
-- _ConvTransposeNd._output_padding (output_size {h, w} or {N, C, h, w}).
local function output_padding_for(self, x, output_size)
  if output_size == nil then return self.output_padding end
  local name = "ConvTranspose2d"
  if type(output_size) ~= "table" or (#output_size ~= 2 and #output_size ~= 4) then
    error(fmt("%s: output_size must be a table of 2 or 4 integers ({h, w} or {N, C, h, w}), got %s",
              name, type(output_size) == "table" and #output_size .. " values" or type(output_size)), 3)
  end
  local size = {output_size[#output_size - 1], output_size[#output_size]}
  local lo, hi, op = {}, {}, {}
  for d = 1, 2 do
    lo[d] = (x:size(d + 2) - 1) * self.stride[d] - 2 * self.padding[d]
            + self.dilation[d] * (self.kernel_size[d] - 1) + 1
    hi[d] = lo[d] + self.stride[d] - 1
  end
  for d = 1, 2 do
    if math_type(size[d]) ~= "integer" or size[d] < lo[d] or size[d] > hi[d] then
      error(fmt("%s: requested an output size of {%s, %s}, but valid sizes range from "
                .. "{%d, %d} to {%d, %d} (for an input of {%d, %d})", name, tostring(size[1]),
                tostring(size[2]), lo[1], lo[2], hi[1], hi[2], x:size(3), x:size(4)), 3)
    end
    op[d] = size[d] - lo[d]
  end
  return op
end

function ConvTranspose2d:forward(x, output_size)
  check_conv_input(self, x, "ConvTranspose2d")
  return F.conv_transpose2d(x, self.weight, self.bias, {
    stride = self.stride, padding = self.padding, dilation = self.dilation,
    groups = self.groups, output_padding = output_padding_for(self, x, output_size)})
end

local function conv_repr(self)
  local s = fmt("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
                pair_str(self.kernel_size), pair_str(self.stride))
  if self.padding == "same" then
    s = s .. ", padding=same"
  elseif self.padding[1] ~= 0 or self.padding[2] ~= 0 then
    s = s .. ", padding=" .. pair_str(self.padding)
  end
  local op = self.output_padding
  if op and (op[1] ~= 0 or op[2] ~= 0) then s = s .. ", output_padding=" .. pair_str(op) end
  if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then
    s = s .. ", dilation=" .. pair_str(self.dilation)
  end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if not self.bias then s = s .. ", bias=false" end
  if self.padding_mode ~= "zeros" then s = s .. ", padding_mode=" .. self.padding_mode end
  return s
end
Conv2d.extra_repr = conv_repr
ConvTranspose2d.extra_repr = conv_repr

---------------------------------------------------------------------------
-- MaxPool2d(kernel [, {stride = kernel, padding = 0, dilation = 1,
-- ceil_mode = false, return_indices = false}]) and AvgPool2d(kernel [,
-- {stride = kernel, padding = 0, ceil_mode = false, count_include_pad = true}]).
-- The geometry is checked by F when the module runs.
local MaxPool2d = Module:extend("MaxPool2d")
conv.MaxPool2d = MaxPool2d

function MaxPool2d:init(kernel_size, opts)
  local name = "MaxPool2d"
  opts = options(opts, name, {stride = true, padding = true, dilation = true,
                              ceil_mode = true, return_indices = true})
  self.kernel_size = pair(kernel_size, name, "kernel_size", 1)
  self.stride = pair(opts.stride or kernel_size, name, "stride", 1)
  self.padding = pair(opts.padding or 0, name, "padding", 0)
  self.dilation = pair(opts.dilation or 1, name, "dilation", 1)
  self.ceil_mode = opts.ceil_mode == true
  self.return_indices = opts.return_indices == true
end

function MaxPool2d:forward(x)
  check_input(x, "MaxPool2d")
  return F.max_pool2d(x, self.kernel_size, {stride = self.stride, padding = self.padding,
                      dilation = self.dilation, ceil_mode = self.ceil_mode,
                      return_indices = self.return_indices})
end

function MaxPool2d:extra_repr()
  return fmt("kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s",
             pair_str(self.kernel_size), pair_str(self.stride), pair_str(self.padding),
             pair_str(self.dilation), tostring(self.ceil_mode))
end

local AvgPool2d = Module:extend("AvgPool2d")
conv.AvgPool2d = AvgPool2d

function AvgPool2d:init(kernel_size, opts)
  local name = "AvgPool2d"
  opts = options(opts, name, {stride = true, padding = true, ceil_mode = true,
                              count_include_pad = true})
  self.kernel_size = pair(kernel_size, name, "kernel_size", 1)
  self.stride = pair(opts.stride or kernel_size, name, "stride", 1)
  self.padding = pair(opts.padding or 0, name, "padding", 0)
  self.ceil_mode = opts.ceil_mode == true
  self.count_include_pad = opts.count_include_pad ~= false
end

function AvgPool2d:forward(x)
  check_input(x, "AvgPool2d")
  return F.avg_pool2d(x, self.kernel_size, {stride = self.stride, padding = self.padding,
                      ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad})
end

function AvgPool2d:extra_repr()
  local s = fmt("kernel_size=%s, stride=%s, padding=%s", pair_str(self.kernel_size),
                pair_str(self.stride), pair_str(self.padding))
  if self.ceil_mode then s = s .. ", ceil_mode=true" end
  if not self.count_include_pad then s = s .. ", count_include_pad=false" end
  return s
end

-- AdaptiveAvgPool2d(output_size): output_size n or {h, w}.
local AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")
conv.AdaptiveAvgPool2d = AdaptiveAvgPool2d

function AdaptiveAvgPool2d:init(output_size)
  self.output_size = pair(output_size, "AdaptiveAvgPool2d", "output_size", 1)
end

function AdaptiveAvgPool2d:forward(x)
  check_input(x, "AdaptiveAvgPool2d")
  return F.adaptive_avg_pool2d(x, self.output_size)
end

function AdaptiveAvgPool2d:extra_repr()
  return "output_size=" .. pair_str(self.output_size)
end

---------------------------------------------------------------------------
-- BatchNorm2d(n [, {eps = 1e-5, momentum = 0.1, affine = true,
-- track_running_stats = true, dtype}]) over [N, n, H, W]: BatchNorm1d's
-- parameters, buffers and modes, with statistics per channel over N, H, W.
local BatchNorm2d = layers.BatchNorm1d:extend("BatchNorm2d")
conv.BatchNorm2d = BatchNorm2d
BatchNorm2d.input_ranks = {[4] = true}
BatchNorm2d.input_desc = "4-D [N, C, H, W]"

return conv
