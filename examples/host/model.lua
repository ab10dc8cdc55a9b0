-- model.lua — the model examples/host/host.c embeds: an MLP that learns
-- y = sin(x). The host calls these globals:
--   set_data(x, y)        training data, [N, 1] float32 tensors
--   train_slice(n)        n more mini-batch steps of the training run
--                         (train.fit_job: fit a bounded slice at a time, so
--                         the host's own loop stays in charge); returns the
--                         slice's mean training loss
--   predict(x)            the model's output for x [M, 1], without a graph
--   save(path), load(path)  the weights, as a safetensors checkpoint
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

mg.manual_seed(7)
local net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 1))
local job

function set_data(x, y)
  job = train.fit_job(net, {
    train = data.DataLoader(data.TensorDataset(x, y), {batch_size = 32, shuffle = true}),
    loss = F.mse_loss, optimizer = optim.Adam(net, {lr = 1e-2}),
    epochs = 1000, progress = "quiet"})
end

function train_slice(n)
  -- job:run{seconds = 0.005} would bound the slice by time instead
  return job:run{batches = n}.slice_loss
end

function predict(x)
  net:eval()
  return mg.no_grad(function() return net(x) end)
end

function save(path)
  mg.save(path, net:state_dict())
end

function load(path)
  net:load_state_dict(mg.load(path))
end
