"""Exact activation patching on Gemma 3 270M's IOI pair against TransformerLens in the same run.

    python -m bench patching [--repeats 5] [--tl-repeats 1] [--sweeps resid_pre,attn_out,mlp_out,head_out]
                             [--no-tl] [--long-tokens 256] [--threads N]
                             [--bridge-python .venv-tl43/bin/python [--bridge-sweeps resid_pre,…]] [--service]

``--bridge-python`` also runs TransformerLens 4.3 (``TransformerBridge.boot_transformers`` on the same converted
weights) in its own environment, made with ``python3 -m venv .venv-tl43 && .venv-tl43/bin/pip install
torch==2.13.0 'transformer-lens>=4.3,<4.4'`` (its sweeps take minutes each: ``--bridge-sweeps`` picks them);
``--service`` times each sweep as a job through ``interp api`` and a worker on the Redis at 127.0.0.1:6379.

Per sweep: our median over ``--repeats`` runs (default 5) and TransformerLens's ``patching.get_act_patch_*`` over
``--tl-repeats`` (default 1: each of its sweeps takes minutes on a 2-core CPU), the largest difference of the raw
patched logit differences, the speed-up, and two floors:

* ``floor``: the bare forwards our sweep cannot avoid: the clean and corrupted forwards, the base run's keys and
  values, and the sweep's own resumed runs (the same rows, positions and start layers) with nothing patched;
* ``full``: what a sweep without resuming needs at least: one batched full forward per patch with
  last-position logits only.

Peak memory is the growth of the process's resident set during the sweep (sampled every millisecond),
beside the chunk budget; it is measured in a child process run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that
freed tensors go back to the system and the resident set follows live memory (timings stay in the parent).
The long pair (``--long-tokens``, default 256) patches the residual at a few positions of every layer under
32 and 128 MiB budgets to show that the peak follows the budget, not the prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import torch
from transformer_lens import HookedTransformer, patching

from bench.timing import median_seconds
from workers.core.activations import forward_reader
from workers.core.hooked_model import HookedModel
from workers.core.loading import converted_dir, load_model
from workers.core.metrics import AnswerMetric
from workers.core.patching import PatchingRequest, run_patching
from workers.core.patching.budget import chunks_by_start_layer, rows_per_chunk
from workers.core.patching.exact import live_by_start, plan_runs, run_patched_chunk
from workers.core.patching.runs import PatchRuns, final_resid, resume_hooks
from workers.core.patching.suffix import record_keys_values, run_patched_suffixes
from workers.core.patching.targets import GRANULARITIES, plan_target
from workers.core.registry import Registry

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"
ANSWER, WRONG = " Mary", " John"
CACHE_DIR = Path(".cache/models")
TL_SWEEPS: dict[str, Callable[..., torch.Tensor]] = {
    "resid_pre": patching.get_act_patch_resid_pre,
    "attn_out": patching.get_act_patch_attn_out,
    "mlp_out": patching.get_act_patch_mlp_out,
    "head_out": patching.get_act_patch_attn_head_out_all_pos,
}


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_growth(fn: Callable[[], object]) -> int:
    """Bytes the resident set grew to at its peak while ``fn`` ran, sampled every millisecond.

    (The kernel's own ``VmHWM`` does not see the transient allocations of torch's worker threads here.)
    """
    before = _rss_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return peak - before


def request(target: str, **changes: object) -> PatchingRequest:
    return PatchingRequest(CLEAN, CORRUPTED, answer=ANSWER, wrong_answer=WRONG, targets=(target,), **changes)  # type: ignore[arg-type]


def floor_seconds(model: HookedModel, target: str, budget: int) -> float:
    """The unavoidable forwards of our sweep: two reads, the base run's keys and values, then the same resumed
    runs as the sweep (same rows, same positions, same start layers) with nothing patched."""
    metric = AnswerMetric.for_model(model, "logit_diff", ANSWER, WRONG)
    clean, corrupted = model.tokenize(CLEAN), model.tokenize(CORRUPTED)
    n_layers, n_pos = model.facts.n_layers, clean.shape[1]
    plan = plan_target(GRANULARITIES[target], model.facts, range(n_layers), range(n_pos))
    hooks = sorted({unit.hook for unit in plan.units}, key=lambda hook: hook.sort_key)
    read = forward_reader(model)
    last = final_resid(n_layers)
    rows_max = rows_per_chunk(model.facts, n_pos, model.dtype.itemsize, budget)

    def bare() -> None:
        donor = read(clean, [str(h) for h in [*hooks, last]])
        base = read(corrupted, [str(h) for h in {*hooks, *resume_hooks(hooks, n_layers)}])
        runs = PatchRuns(corrupted, base, donor, 0.0, 0.0)
        by_start = live_by_start(runs, plan.units)
        planned = plan_runs(chunks_by_start_layer(by_start, rows_max), plan.units, n_pos, n_layers, rows_max)
        later = any(any(run.starts) for run in planned if run.starts is not None)
        recorded = record_keys_values(model, corrupted) if later else None
        for run in planned:
            layer, rows = run.chunks[0][0], sum(len(chunk) for _, chunk in run.chunks)
            if run.starts is not None:
                layers = [layer for layer, chunk in run.chunks for _ in chunk]
                run_patched_suffixes(model, runs, {}, run.starts, layers, metric, recorded)
            elif layer == n_layers:
                metric.from_final_resid(model, base[str(last)].expand(rows, -1, -1))
            else:
                run_patched_chunk(model, runs, [[] for _ in range(rows)], layer, metric)

    return median_seconds(bare, repeats=3)


def full_forward_seconds(model: HookedModel, patches: int, rows: int = 15) -> float:
    """``patches`` full forwards from the tokens, batched ``rows`` at a time, last-position logits only."""
    tokens = model.tokenize(CORRUPTED)

    def run() -> None:
        for start in range(0, patches, rows):
            model.run(tokens.expand(min(rows, patches - start), -1), logits="last")

    return median_seconds(run, repeats=1, warmup=0)


def tl_sweep(tl: HookedTransformer, model: HookedModel, target: str) -> torch.Tensor:
    answer, wrong = model.token_id(ANSWER), model.token_id(WRONG)
    clean, corrupted = model.tokenize(CLEAN), model.tokenize(CORRUPTED)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[0, -1, answer] - logits[0, -1, wrong]

    with torch.no_grad():
        _, cache = tl.run_with_cache(clean)
        return TL_SWEEPS[target](tl, corrupted, cache, metric).double()


def bridge_sweeps(python: Path, sweeps: list[str], threads: int) -> dict[str, tuple[float, torch.Tensor]]:
    """TransformerLens 4.3's sweeps, run by ``bench/tl_bridge_patching.py`` in its own environment on the same
    converted weights: seconds and raw values by sweep."""
    entry = Registry.default().get("gemma-3-270m")
    model_dir = converted_dir(entry, CACHE_DIR)
    spec = {"clean": CLEAN, "corrupted": CORRUPTED, "answer": ANSWER, "wrong": WRONG, "sweeps": sweeps,
            "threads": threads or torch.get_num_threads()}
    script = Path(__file__).with_name("tl_bridge_patching.py")
    done = subprocess.run([str(python), str(script), str(model_dir), json.dumps(spec)], check=True,
                          capture_output=True, text=True)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            results[row["sweep"]] = (float(row["seconds"]), torch.tensor(row["values"], dtype=torch.float64))
    return results


def service_seconds(sweeps: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    """Each sweep as a patching job through ``interp api`` and a worker: the first run (activations not cached)
    and the median of ``repeats`` more, submit to result."""
    from bench.bench_throughput import Worker, deployment

    out = {}
    with tempfile.TemporaryDirectory(prefix="interp-patching-") as tmp:
        served = deployment(Path(tmp), "redis://127.0.0.1:6379/14", Worker("threads", 5.0))
        with served as (url, headers, _), httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            for sweep in sweeps:
                body = {"kind": "patching", "model": "gemma-3-270m", "clean_prompt": CLEAN,
                        "corrupted_prompt": CORRUPTED, "answer": ANSWER, "wrong_answer": WRONG, "targets": [sweep]}
                times = []
                for _ in range(repeats + 1):
                    started = time.perf_counter()
                    job = client.post("/v1/jobs", json=body, params={"wait": 300}).json()
                    times.append(time.perf_counter() - started)
                    if job["status"] != "succeeded":
                        raise RuntimeError(f"the {sweep} job ended {job['status']}: {job.get('error')}")
                out[sweep] = (times[0], statistics.median(times[1:]))
    return out


def long_pair(model: HookedModel, n_tokens: int) -> tuple[str, str]:
    """A clean/corrupted pair of exactly ``n_tokens`` tokens (with BOS) differing at the second name."""
    filler = " They talked about the weather, the market and the long road home."
    clean, corrupted = CLEAN, CORRUPTED
    while model.tokenize(clean).shape[1] < n_tokens:
        clean, corrupted = clean + filler, corrupted + filler
    ids = model.tokenize(clean)[0, :n_tokens].tolist()
    bad_ids = model.tokenize(corrupted)[0, :n_tokens].tolist()
    return str(model.tokenizer.decode(ids[1:])), str(model.tokenizer.decode(bad_ids[1:]))


def memory_report(model: HookedModel, what: str, long_tokens: int) -> None:
    """Peak growth of one first call (a sweep name, or ``long:MiB`` for the long pair under that budget).

    Run in a fresh process after one plain forward: that forward pages in the memory-mapped weights, and the
    sweep's first call is the one whose transient peak shows (later calls reuse freed blocks).
    """
    budget = request("resid_pre").memory_budget
    model.run(model.tokenize(CLEAN), logits="all")  # pages in every weight (safetensors are memory-mapped)
    if not what.startswith("long:"):
        peak = peak_growth(partial(run_patching, model, request(what)))
        print(f"peak growth {what}: {peak / 2**20:.1f} MiB (budget {budget / 2**20:.0f} MiB)", flush=True)
        return
    small = int(what.removeprefix("long:")) * 2**20
    clean, corrupted = long_pair(model, long_tokens)
    n_pos = model.tokenize(clean).shape[1]
    positions = tuple(range(10, n_pos, max(1, (n_pos - 10) // 4)))[:4]
    long_request = PatchingRequest(
        clean, corrupted, answer=ANSWER, wrong_answer=WRONG, positions=positions, memory_budget=small
    )
    rows = rows_per_chunk(model.facts, n_pos, model.dtype.itemsize, small)
    start = time.perf_counter()
    peak = peak_growth(partial(run_patching, model, long_request))
    print(
        f"long pair, {n_pos} tokens, resid_pre at positions {list(positions)} of all 18 layers, "
        f"budget {small / 2**20:.0f} MiB ({rows} rows per chunk): peak growth {peak / 2**20:.1f} MiB, "
        f"{time.perf_counter() - start:.1f}s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5, help="runs of our sweeps (median)")
    parser.add_argument("--tl-repeats", type=int, default=1, help="runs of TransformerLens's sweeps (median)")
    parser.add_argument("--sweeps", default=",".join(TL_SWEEPS))
    parser.add_argument("--tl-sweeps", default=None, help="sweeps also run by TransformerLens (default: all)")
    parser.add_argument("--no-tl", action="store_true", help="skip TransformerLens (minutes per sweep)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--memory-only", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--long-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--bridge-python", type=Path, default=None,
                        help="the python of an environment with TransformerLens 4.3: also run its TransformerBridge")
    parser.add_argument("--bridge-sweeps", default="resid_pre", help="sweeps TransformerLens 4.3 runs (once each)")
    parser.add_argument("--service", action="store_true",
                        help="also time the sweeps through the service (interp api and worker), submit to result")
    args = parser.parse_args()
    sweeps = args.sweeps.split(",")
    tl_sweeps = set((args.tl_sweeps or args.sweeps).split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    hf, tokenizer = load_model(Registry.default().get("gemma-3-270m"), cache_dir=CACHE_DIR)
    model = HookedModel(hf, tokenizer, model_id="gemma-3-270m", max_tokens=1024)
    if args.memory_only:
        memory_report(model, args.memory_only, args.long_tokens)
        return
    tl = None
    if not args.no_tl:
        tl = HookedTransformer.from_pretrained_no_processing(
            "google/gemma-3-270m", hf_model=hf, tokenizer=tokenizer, device="cpu", dtype=torch.float32
        ).eval()
    budget = request("resid_pre").memory_budget
    print(
        f"Gemma 3 270M, IOI pair ({model.tokenize(CLEAN).shape[1]} tokens), torch threads {torch.get_num_threads()}; "
        f"ours: median of {args.repeats}, TransformerLens: median of {args.tl_repeats}; budget {budget / 2**20:.0f} MiB"
    )
    print(
        f"{'sweep':10s} {'patches':>7s} {'ours':>8s} {'floor':>8s} {'full':>8s} {'TL':>9s} {'speed-up':>9s} max |diff|"
    )
    bridge = {}
    if args.bridge_python:
        bridge = bridge_sweeps(args.bridge_python, args.bridge_sweeps.split(","), args.threads)
    served = service_seconds(sweeps, args.repeats) if args.service else {}
    for target in sweeps:
        result = run_patching(model, request(target))
        ours = median_seconds(partial(run_patching, model, request(target)), repeats=args.repeats, warmup=0)
        floor = floor_seconds(model, target, budget)
        patches = result.target(target).raw.numel()
        full = full_forward_seconds(model, patches)
        tl_time, diff = float("nan"), float("nan")
        if tl is not None and target in tl_sweeps:
            times = []
            for _ in range(args.tl_repeats):
                start = time.perf_counter()
                expected = tl_sweep(tl, model, target)
                times.append(time.perf_counter() - start)
            tl_time = statistics.median(times)
            diff = (result.target(target).raw - expected).abs().max().item()
        print(
            f"{target:10s} {patches:7d} {ours:7.2f}s {floor:7.2f}s {full:7.2f}s {tl_time:8.1f}s "
            f"{tl_time / ours:8.1f}x {diff:10.2e}",
            flush=True,
        )
        if target in bridge:
            seconds, values = bridge[target]
            bridge_diff = (result.target(target).raw - values).abs().max().item()
            print(f"{'':10s} TransformerLens 4.3 TransformerBridge {seconds:7.1f}s: ours {seconds / ours:6.1f}x "
                  f"faster in process, max |diff| {bridge_diff:.2e}", flush=True)
        if target in served:
            cold, warm = served[target]
            line = f"{'':10s} through the service, submit to result: first {cold:.2f}s, median {warm:.2f}s"
            if target in bridge:
                line += f" ({bridge[target][0] / warm:.1f}x TransformerLens 4.3)"
            print(line, flush=True)
    if not args.no_memory:
        for what in [*sweeps, "long:32", "long:128"]:
            child = [sys.executable, "-m", "bench", "patching", "--memory-only", what]
            child += ["--long-tokens", str(args.long_tokens), "--threads", str(args.threads)]
            subprocess.run(child, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}, check=True)


if __name__ == "__main__":
    main()
