"""The Optuna twin of bench/tune_samplers.lua: the same three functions,
trial counts and seeds, each search an Optuna study driven by ask and tell
with define-by-run suggestions, in Optuna's samplers: TPE (its default),
multivariate TPE, random, and CMA-ES where the cmaes package is there.

    python3 bench/tune_samplers.py [--seeds 10] [--only branin,levy5]

Prints one line per function and sampler:
    ROW <function> <sampler> <median regret> <min> <max> <ms per trial>
"""
import argparse
import math
import statistics
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)

H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
       [17, 8, 0.05, 10, 0.1, 14]]
H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 * x1 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def hartmann6(trial):
    x = [trial.suggest_float("x%d" % (j + 1), 0, 1) for j in range(6)]
    s = 0.0
    for i in range(4):
        inner = sum(H_A[i][j] * (x[j] - H_P[i][j] * 1e-4) ** 2 for j in range(6))
        s -= H_ALPHA[i] * math.exp(-inner)
    return s


def levy5(trial):
    w = [1 + (trial.suggest_float("x%d" % (j + 1), -10, 10) - 1) / 4 for j in range(5)]
    s = math.sin(math.pi * w[0]) ** 2
    for j in range(4):
        s += (w[j] - 1) ** 2 * (1 + 10 * math.sin(math.pi * w[j] + 1) ** 2)
    return s + (w[4] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[4]) ** 2)


FUNCTIONS = [("branin", 40, 0.397887, branin), ("hartmann6", 60, -3.32237, hartmann6),
             ("levy5", 60, 0.0, levy5)]


def samplers():
    out = [("tpe", lambda s: optuna.samplers.TPESampler(seed=s)),
           ("tpe-multivariate", lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True)),
           ("random", lambda s: optuna.samplers.RandomSampler(seed=s))]
    try:
        import cmaes  # noqa: F401  (CmaEsSampler needs it)
        out.append(("cmaes", lambda s: optuna.samplers.CmaEsSampler(seed=s)))
    except ImportError:
        pass
    return out


def search(f, trials, minimum, make, seed):
    study = optuna.create_study(sampler=make(seed))
    t0 = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        study.tell(trial, f(trial))
    return study.best_value - minimum, (time.perf_counter() - t0) / trials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    for name, trials, minimum, f in FUNCTIONS:
        if only and name not in only:
            continue
        for sname, make in samplers():
            regrets, times = [], []
            for seed in range(1, a.seeds + 1):
                r, t = search(f, trials, minimum, make, seed)
                regrets.append(r)
                times.append(t)
            print("ROW %s %s %.6g %.6g %.6g %.4f" % (name, sname, statistics.median(regrets),
                                                    min(regrets), max(regrets),
                                                    1e3 * statistics.median(times)), flush=True)


main()
