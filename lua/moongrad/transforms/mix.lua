-- moongrad.transforms.mix: MixUp and CutMix, added to the
-- moongrad.transforms table (see there for the API).
--
-- Both pair each sample n with sample perm[n] of the same batch (perm =
-- mg.randperm(N)) and turn the labels into soft targets [N, K]:
--   y_soft[n] = lam[n] * onehot(y[n]) + (1 - lam[n]) * onehot(y[perm[n]])
-- (soft targets given as yb are mixed the same way). After a call,
-- t.last_lambda holds the mixing weights used: a number for MixUp, an [N]
-- float64 tensor for CutMix (each sample's exact kept area).
local mg = require "moongrad"
local util = require "moongrad.transforms.util"

local format, concat = string.format, table.concat
local floor, sqrt = math.floor, math.sqrt
local transform, check_batch = util.transform, util.check_batch

-- yb as float soft targets [N, K] in dtype dt.
local function soft_targets(name, y, N, K)
  if not mg.is_tensor(y) then
    error(format("%s: needs the labels yb (int64 [N] or float [N, K]), got %s", name, type(y)), 3)
  end
  local s, dt = y:shape(), y:dtype()
  if dt == "int64" then
    if #s ~= 1 or s[1] ~= N then
      error(format("%s: int64 labels must have shape [%d], got [%s]", name, N, concat(s, ",")), 3)
    end
    if not K then error(name .. ": option 'num_classes' is needed for int64 labels", 3) end
    if N > 0 then
      local lo, hi = y:min():item(), y:max():item()
      if lo < 1 or hi > K then
        error(format("%s: labels must lie in 1..%d, got values in %d..%d", name, K, lo, hi), 3)
      end
    end
    return mg.arange(1, K + 1):view(1, K):eq(y:view(N, 1)):to("float32")
  end
  if #s ~= 2 or s[1] ~= N or (K and s[2] ~= K) then
    error(format("%s: soft targets must have shape [%d, %s], got [%s]", name, N,
                 K and tostring(K) or "K", concat(s, ",")), 3)
  end
  return y
end

-- num_classes, when given, is at least 1 (raises at the constructor's caller).
local function check_classes(name, K)
  if K == 0 then error(name .. ": option 'num_classes' must be at least 1", 3) end
end

return function(T)
  -- MixUp: one lam ~ Beta(alpha, alpha) per batch,
  -- x = lam x + (1 - lam) x[perm].
  function T.MixUp(opts)
    local get = util.options("MixUp", opts, {"alpha", "num_classes"})
    local options = {alpha = get("alpha", "positive", 0.2), num_classes = get("num_classes", "int", nil)}
    check_classes("MixUp", options.num_classes)
    return transform("MixUp", options, function(self, x, y)
      local N = check_batch("MixUp", x)
      local ys = soft_targets("MixUp", y, N, options.num_classes)
      local lam = util.beta(options.alpha, options.alpha)
      local perm = mg.randperm(N)
      self.last_lambda = lam
      local xm = x * lam + x:index_select(1, perm) * (1 - lam)
      local ym = ys * lam + ys:index_select(1, perm) * (1 - lam)
      return xm, ym
    end)
  end

  -- CutMix: one lam ~ Beta(alpha, alpha) per batch sets the box size
  -- (half-sides r W and r H, r = sqrt(1 - lam) / 2, as torchvision's); each
  -- sample draws its own box centre, the box is clipped to the image, and
  -- its lam is 1 - (exact box area) / (H W).
  function T.CutMix(opts)
    local get = util.options("CutMix", opts, {"alpha", "num_classes"})
    local options = {alpha = get("alpha", "positive", 1.0), num_classes = get("num_classes", "int", nil)}
    check_classes("CutMix", options.num_classes)
    return transform("CutMix", options, function(self, x, y)
      local N, _, H, W = check_batch("CutMix", x)
      local ys = soft_targets("CutMix", y, N, options.num_classes)
      local lam = util.beta(options.alpha, options.alpha)
      local perm = mg.randperm(N)
      local r = 0.5 * sqrt(1 - lam)
      local rw, rh = floor(r * W), floor(r * H)
      local cx = mg.randint(0, W - 1, {N}, "float64")
      local cy = mg.randint(0, H - 1, {N}, "float64")
      local x1, x2 = (cx - rw):clamp(0, W), (cx + rw):clamp(0, W)
      local y1, y2 = (cy - rh):clamp(0, H), (cy + rh):clamp(0, H)
      local bh, bw = y2 - y1, x2 - x1
      local boxes = mg.zeros(N, 4, "float64")
      boxes:narrow(2, 1, 1):copy_((y1 + 1):view(N, 1))
      boxes:narrow(2, 2, 1):copy_((x1 + 1):view(N, 1))
      boxes:narrow(2, 3, 1):copy_(bh:view(N, 1))
      boxes:narrow(2, 4, 1):copy_(bw:view(N, 1))
      local lams = 1 - bh * bw / (H * W)                    -- [N] float64
      self.last_lambda = lams
      local l = lams:to(ys:dtype()):view(N, 1)
      local ym = ys * l + ys:index_select(1, perm) * (1 - l)
      return mg._paste(x, x, perm, boxes), ym
    end)
  end
end
