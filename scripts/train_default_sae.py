"""Train the default SAE of Gemma 3 270M: a TopK SAE on ``blocks.6.hook_resid_post``, fully offline.

Text: English prose the Python standard library ships (the language reference topics in ``pydoc_data`` and the
docstrings of the stdlib's own source files). ``--gen-tokens N`` adds continuations Gemma itself samples (seeded)
from diverse seed prompts (stories, recipes, letters, news); it is off by default because sampling from Gemma on
two shared CPU cores took minutes per batch, and the committed SAE was trained on stdlib text only. Every
sequence is BOS + 127 tokens; the BOS position is left out of training and of the quality figures, because its
residual is a "massive activation" (norm ~5e4 against ~3.6e3 elsewhere) that no small dictionary should spend
features on.

The recipe is OpenAI's TopK SAE (Gao et al. 2024): activations scaled by one constant to mean norm sqrt(d_in),
b_dec initialised at the mean, unit-norm decoder rows, MSE loss plus the AuxK loss on dead latents. The scale is
folded back before saving, so the saved SAE reads raw activations and its feature activations are in residual
units along unit-norm decoder directions. Quality (L0, MSE, explained variance, next-token loss recovered against
zero ablation) is measured on held-out documents and written next to the weights in ``quality.json``.

    .venv/bin/python scripts/train_default_sae.py            # ~35 min on 2 cores shared with 4 other jobs
    .venv/bin/python scripts/train_default_sae.py --reuse     # retrain from cached activations
    .venv/bin/python scripts/train_default_sae.py --evaluate-only  # re-measure the saved SAE
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from workers.core.hooked_model import HookedModel
from workers.core.hooks import HookName
from workers.core.loading import load_model
from workers.core.registry import Registry

REPO = Path(__file__).resolve().parents[1]
MODEL_ID = "gemma-3-270m"
HOOK = "blocks.6.hook_resid_post"
LAYER = 6
SEQ_LEN = 128
SAE_ID = "res-6"
OUT_DIR = REPO / "workers" / "saes" / MODEL_ID / SAE_ID
WORK_DIR = REPO / ".cache" / "sae-train"

RUN_ONLY_ARGS = ("reuse", "threads", "evaluate_only", "probe_only")
SEED_PROMPTS = [
    "Once upon a time, in a small village by the sea,",
    "The recipe for a simple tomato soup starts with",
    "Dear Sarah,\n\nThank you so much for your letter.",
    "BREAKING NEWS: The city council voted on Tuesday to",
    "The history of the Roman Empire begins",
    "Photosynthesis is the process by which plants",
    "My favourite day of the week is Saturday because",
    "The football match ended in a draw after",
    "In 1969, the first humans landed on the Moon.",
    "To install the software, first open a terminal and",
    "The weather forecast for tomorrow says",
    "She opened the door slowly and saw",
    "The stock market fell sharply today as investors",
    "Here are five tips for a good night's sleep:",
    "The cat sat on the windowsill, watching",
    "Mathematics is the study of numbers, shapes and",
    "The old man told the children a story about a dragon",
    "Our hotel in Paris was close to the Eiffel Tower, and",
    "The doctor said that the patient needed",
    "Q: What is the capital of Japan?\nA:",
    "The new smartphone has a larger screen and",
    "During the French Revolution,",
    "The best way to learn a new language is",
    "Chapter 1\n\nThe rain had not stopped for three days.",
    "The museum's new exhibition features paintings by",
    "Water boils at 100 degrees Celsius, but",
    "The teacher asked the students to write an essay about",
    "The company announced record profits of $3.2 billion",
    "In the forest, the wolves",
    "The president gave a speech about",
    "How to plant a vegetable garden: Step 1.",
    "The train from London to Edinburgh was delayed because",
    "My grandmother's kitchen always smelled of",
    "The planets of the solar system are Mercury, Venus,",
    "He picked up the guitar and started to play",
    "The study found that people who exercise regularly",
    "Monday, March 3rd. Today I woke up early and",
    "The ship sailed across the Atlantic Ocean in",
    "Artificial intelligence is changing the way we",
    "The children laughed as the clown",
    "The ingredients are: 2 cups of flour, 1 cup of sugar,",
    "The battle lasted for three days, and",
    "I can't believe you did that!\" she shouted.",
    "The river flows through the mountains and",
    "Welcome to our website! We offer",
    "The scientist looked through the microscope and saw",
    "The birthday party was a great success:",
    "The hospital opened a new wing for",
    "Love is",
    "The price of coffee has risen because",
    "In the year 2050, cities will",
    "The detective examined the room carefully.",
    "Spring is my favourite season. The flowers",
    "The king and queen lived in a castle",
    "The law requires that all employees",
    "Earthquakes happen when",
    "The band released their third album,",
    "A healthy breakfast includes",
    "Yesterday I went to the market and bought",
    "The professor explained the theory of evolution",
    "The bus stopped, and a young woman",
    "Numbers: one, two, three,",
    "The volcano erupted in",
    "Good morning everyone, and thank you for coming",
]

# Fixed prompts the tests re-encode with encode_sae: its figures must match these to float precision.
PROBE_PROMPTS = [
    "The little girl walked through the forest, singing a song her grandmother had taught her.",
    "Return the number of items in the container; raise TypeError if the argument is not iterable.",
    "The city council approved the new budget on Monday after a long debate about schools and roads.",
]


def log(message: str, start: float) -> None:
    print(f"[{time.monotonic() - start:7.1f}s] {message}", flush=True)


def stdlib_texts() -> list[str]:
    """English prose shipped with Python: language reference topics and stdlib docstrings (sorted: stable)."""
    import pydoc_data.topics

    texts = [str(v) for _, v in sorted(pydoc_data.topics.topics.items())]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "tkinter", "pydoc_data"}
    for path in sorted(stdlib.rglob("*.py")):
        if skip & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 300:
                    texts.append(doc)
    return texts


def generated_texts(model: HookedModel, new_tokens: int, seed: int, start: float) -> list[str]:
    """Gemma's own seeded continuations of the seed prompts (two samples each)."""
    tok = model.tokenizer
    tok.padding_side = "left"
    texts: list[str] = []
    prompts = SEED_PROMPTS + SEED_PROMPTS
    batch = 32
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        enc = tok(chunk, return_tensors="pt", padding=True)
        torch.manual_seed(seed + i)
        with torch.no_grad():
            out = model.model.generate(  # type: ignore[operator]
                **enc, max_new_tokens=new_tokens, do_sample=True, temperature=0.9, top_p=0.95, top_k=0,
            )
        texts += tok.batch_decode(out, skip_special_tokens=True)
        log(f"generated {len(texts)}/{len(prompts)} texts", start)
    return texts


def sequences(model: HookedModel, texts: list[str]) -> torch.Tensor:
    """Documents joined by blank lines and cut into BOS + (SEQ_LEN - 1) token rows."""
    tok = model.tokenizer
    ids: list[int] = []
    for text in texts:
        ids += list(tok(text + "\n\n", add_special_tokens=False)["input_ids"])
    body = SEQ_LEN - 1
    n = len(ids) // body
    rows = torch.tensor(ids[: n * body], dtype=torch.long).view(n, body)
    bos = torch.full((n, 1), int(tok.bos_token_id), dtype=torch.long)
    return torch.cat([bos, rows], dim=1)


def collect(model: HookedModel, seqs: torch.Tensor, start: float, batch: int = 16) -> torch.Tensor:
    """Residual activations at the hook for every non-BOS position: [n * (SEQ_LEN - 1), d_model]."""
    chunks: list[torch.Tensor] = []
    for i in range(0, len(seqs), batch):
        run = model.run(seqs[i : i + batch], cache=[HOOK], stop_at_layer=LAYER + 1, logits="none")
        chunks.append(run.cache[HOOK][:, 1:].reshape(-1, model.facts.d_model).clone())
        if (i // batch) % 20 == 0:
            log(f"activations {i + batch}/{len(seqs)} sequences", start)
    return torch.cat(chunks)


class TopKSae(torch.nn.Module):
    """The training-time SAE, in normalised activation space."""

    def __init__(self, d_in: int, d_sae: int, k: int, b_dec: torch.Tensor) -> None:
        super().__init__()
        w_dec = torch.randn(d_sae, d_in)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = torch.nn.Parameter(w_dec)
        self.W_enc = torch.nn.Parameter(w_dec.T.clone().contiguous())
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.b_dec = torch.nn.Parameter(b_dec.clone())
        self.k = k

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pre = self.pre(x)
        values, indices = pre.topk(self.k, dim=-1)
        acts = torch.zeros_like(pre).scatter_(-1, indices, values.relu())
        return acts @ self.W_dec + self.b_dec, acts, pre

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True))


def batches(n: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    for i in range(0, n - batch + 1, batch):
        yield perm[i : i + batch]


def train(acts: torch.Tensor, args: argparse.Namespace, start: float) -> TopKSae:
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    d_in = acts.shape[1]
    sae = TopKSae(d_in, args.d_sae, args.k, acts.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=args.lr, betas=(0.9, 0.999))
    steps = args.epochs * (len(acts) // args.batch)
    since_fired = torch.zeros(args.d_sae)
    var = (acts - acts.mean(0)).pow(2).sum(-1).mean()
    step = 0
    for epoch in range(args.epochs):
        for idx in batches(len(acts), args.batch, generator):
            x = acts[idx]
            lr = args.lr * min(1.0, (steps - step) / (0.2 * steps))  # constant, then linear decay over the last 20%
            for group in opt.param_groups:
                group["lr"] = lr
            recon, feats, pre = sae(x)
            err = x - recon
            mse = err.pow(2).sum(-1).mean()
            fired = (feats > 0).any(0)
            since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + len(x))
            dead = since_fired > args.dead_after
            loss = mse / var
            if dead.any():
                # AuxK: the top dead latents reconstruct the residual error (Gao et al. 2024).
                k_aux = min(args.aux_k, int(dead.sum()))
                dead_pre = pre.masked_fill(~dead, -torch.inf)
                values, indices = dead_pre.topk(k_aux, dim=-1)
                aux = torch.zeros_like(pre).scatter_(-1, indices, values.relu()) @ sae.W_dec
                aux_mse = (err.detach() - aux).pow(2).sum(-1).mean()
                loss = loss + args.aux_coef * aux_mse / var
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalise_decoder()
            if step % 100 == 0:
                fve = 1 - (mse / var).item()
                log(f"epoch {epoch} step {step}/{steps} fve {fve:.4f} dead {int(dead.sum())} lr {lr:.2e}", start)
            step += 1
    return sae


def fold(sae: TopKSae, scale: float) -> dict[str, torch.Tensor]:
    """SAELens tensors reading raw activations: biases divided by the scale; unit decoder rows stay unit.

    TopK and ReLU are positively homogeneous, so topk((x*s - b_dec) W_enc + b_enc) / s equals
    topk((x - b_dec/s) W_enc + b_enc/s): feature activations come out in residual units.
    """
    with torch.no_grad():
        return {
            "W_enc": sae.W_enc.detach().to(torch.float16).contiguous(),
            "W_dec": sae.W_dec.detach().to(torch.float16).contiguous(),
            "b_enc": (sae.b_enc.detach() / scale).float().contiguous(),
            "b_dec": (sae.b_dec.detach() / scale).float().contiguous(),
        }


def sae_cfg(args: argparse.Namespace, d_in: int, n_train_tokens: int) -> dict[str, object]:
    return {
        "architecture": "topk",
        "d_in": d_in,
        "d_sae": args.d_sae,
        "k": args.k,
        "rescale_acts_by_decoder_norm": False,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "model_name": "google/gemma-3-270m",
            "hook_name": HOOK,
            "hook_head_index": None,
            "prepend_bos": True,
            "context_size": SEQ_LEN,
            "dataset_path": "python-stdlib-docs" + ("+gemma-seeded-samples" if args.gen_tokens > 0 else ""),
            "sae_lens_version": "6.54.0",
            "sae_lens_training_version": None,
            "model_from_pretrained_kwargs": {},
            "neuronpedia_id": None,
            "training_tokens": n_train_tokens * args.epochs,
            "seed": args.seed,
        },
    }


def encode_folded(x: torch.Tensor, w: dict[str, torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and decode raw activations with the saved tensors (float32): the SAE as it will be served."""
    w_enc, w_dec = w["W_enc"].float(), w["W_dec"].float()
    pre = (x - w["b_dec"]) @ w_enc + w["b_enc"]
    values, indices = pre.topk(k, dim=-1)
    feats = torch.zeros_like(pre).scatter_(-1, indices, values.relu())
    return feats, feats @ w_dec + w["b_dec"]


def quality(
    model: HookedModel, batches: list[torch.Tensor], w: dict[str, torch.Tensor], k: int, start: float
) -> dict[str, float]:
    """Figures over non-BOS positions: L0, MSE, explained variance, CE loss clean/spliced/zero-ablated.

    The first prediction of each row (made from BOS, which is never spliced) is the same in every mode and is
    left out, as ``encode_sae`` does with ``exclude_bos``.
    """
    sums = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    n_pred = 0
    l0_sum, sq_err, n_tok = 0.0, 0.0, 0
    xs: list[torch.Tensor] = []
    errs: list[torch.Tensor] = []

    def splice(mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(act: torch.Tensor) -> torch.Tensor:
            out = act.clone()
            body = act[:, 1:]
            if mode == "sae":
                out[:, 1:] = encode_folded(body.reshape(-1, body.shape[-1]), w, k)[1].view_as(body)
            else:
                out[:, 1:] = 0.0
            return out

        return fn

    for i, toks in enumerate(batches):
        targets = toks[:, 1:]
        for mode in ("clean", "sae", "zero"):
            hooks: dict[str | HookName, list[Callable[[torch.Tensor], torch.Tensor | None]]] = {}
            if mode != "clean":
                hooks[HOOK] = [splice(mode)]
            run = model.run(toks, hooks=hooks, cache=[HOOK] if mode == "clean" else [], logits="all")
            if run.logits is None:
                raise RuntimeError("no logits")
            logp = run.logits[:, :-1].log_softmax(-1)
            nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            # The first prediction (from BOS) is identical in every mode: leave it out.
            sums[mode] += nll[:, 1:].sum().item()
            if mode == "clean":
                x = run.cache[HOOK][:, 1:].reshape(-1, model.facts.d_model)
                feats, recon = encode_folded(x, w, k)
                l0_sum += (feats > 0).sum().item()
                sq_err += (x - recon).pow(2).sum().item()
                n_tok += len(x)
                xs.append(x)
                errs.append(x - recon)
        n_pred += targets[:, 1:].numel()
        log(f"quality {i + 1}/{len(batches)}", start)
    x_all = torch.cat(xs)
    total_var = (x_all - x_all.mean(0)).pow(2).sum().item()
    clean, spliced, zero = (sums[m] / n_pred for m in ("clean", "sae", "zero"))
    return {
        "tokens": n_tok,
        "l0": l0_sum / n_tok,
        "mse": sq_err / (n_tok * model.facts.d_model),
        "explained_variance": 1 - sq_err / total_var,
        "ce_loss_clean": clean,
        "ce_loss_with_sae": spliced,
        "ce_loss_zero_ablation": zero,
        "loss_recovered": (zero - spliced) / (zero - clean),
    }


def interpretable_features(
    model: HookedModel, seqs: torch.Tensor, acts: torch.Tensor, w: dict[str, torch.Tensor], k: int, top: int = 12
) -> list[dict[str, object]]:
    """Features whose top activations fall on one token string: the easiest ones to read, with contexts."""
    token_ids = seqs[:, 1:].reshape(-1)
    d_sae = w["W_enc"].shape[1]
    values = torch.zeros(top, d_sae)
    rows = torch.zeros(top, d_sae, dtype=torch.long)
    fired = torch.zeros(d_sae)
    for i in range(0, len(acts), 4096):
        feats = encode_folded(acts[i : i + 4096], w, k)[0]
        fired += (feats > 0).sum(0)
        both = torch.cat([values, feats])
        ids = torch.cat([rows, torch.arange(i, i + len(feats)).unsqueeze(1).expand(-1, d_sae)])
        values, pick = both.topk(top, dim=0)
        rows = ids.gather(0, pick)
    fire_rate = fired / len(acts)
    found: list[dict[str, object]] = []
    for feature in range(feats.shape[1]):
        if values[-1, feature] <= 0:
            continue
        strings = model.token_strings(token_ids[rows[:, feature]])
        counts: dict[str, int] = {}
        for s in strings:
            counts[s.strip().lower()] = counts.get(s.strip().lower(), 0) + 1
        best, n = max(counts.items(), key=lambda item: item[1])
        contexts = []
        for r in rows[:5, feature].tolist():
            seq, pos = divmod(r, SEQ_LEN - 1)
            lo = max(1, pos + 1 - 8)
            before = model.tokenizer.decode(seqs[seq, lo : pos + 1].tolist())
            here = model.tokenizer.decode([int(seqs[seq, pos + 1])])
            contexts.append(f"{before}[[{here}]]")
        found.append({
            "feature": feature,
            "purity": n / top,
            "token": best,
            "fire_rate": fire_rate[feature].item(),
            "top_activation": values[0, feature].item(),
            "top_tokens": strings,
            "contexts": contexts,
        })
    found.sort(key=lambda f: (-float(f["purity"]), -float(f["fire_rate"])))  # type: ignore[arg-type]
    # One feature per token string, and skip ultra-common punctuation to show a varied sample.
    shown: list[dict[str, object]] = []
    seen: set[str] = set()
    for f in found:
        if f["token"] in seen or not str(f["token"]).isalpha():
            continue
        seen.add(str(f["token"]))
        shown.append(f)
        if len(shown) == 12:
            break
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-tokens", type=int, default=160_000)
    parser.add_argument("--heldout-seqs", type=int, default=48)
    parser.add_argument("--gen-tokens", type=int, default=0)
    parser.add_argument("--d-sae", type=int, default=2048)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--aux-k", type=int, default=256)
    parser.add_argument("--aux-coef", type=float, default=1 / 32)
    parser.add_argument("--dead-after", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="reuse cached sequences and activations")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evaluate-only", action="store_true", help="re-measure the saved SAE (implies --reuse)")
    parser.add_argument("--probe-only", action="store_true", help="only re-measure the probe prompts' figures")
    args = parser.parse_args()
    args.evaluate_only = args.evaluate_only or args.probe_only
    torch.set_num_threads(args.threads)
    start = time.monotonic()

    entry = Registry.default().get(MODEL_ID)
    hf_model, tokenizer = load_model(entry, cache_dir=REPO / ".cache" / "models")
    model = HookedModel(hf_model, tokenizer, model_id=MODEL_ID, max_tokens=entry.max_tokens)
    log("model loaded", start)

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    cached = WORK_DIR / "activations.safetensors"
    if (args.reuse or args.evaluate_only) and cached.exists():
        data = load_file(cached)
        train_seqs, heldout_seqs, acts = data["train_seqs"], data["heldout_seqs"], data["acts"]
    else:
        texts = stdlib_texts()
        log(f"{len(texts)} stdlib texts", start)
        generated = generated_texts(model, args.gen_tokens, args.seed, start) if args.gen_tokens > 0 else []
        # Every 10th document (stdlib and generated alike) is held out.
        docs = texts + generated
        order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(args.seed)).tolist()
        held = [docs[i] for j, i in enumerate(order) if j % 10 == 0]
        train_docs = [docs[i] for j, i in enumerate(order) if j % 10 != 0]
        # Keep the generated texts in the training set in full: they are the non-technical share.
        n_train_seqs = math.ceil(args.train_tokens / (SEQ_LEN - 1))
        all_train = sequences(model, train_docs)
        generated_set = set(generated)
        gen_train = sequences(model, [d for d in train_docs if d in generated_set])
        pick = torch.randperm(len(all_train), generator=torch.Generator().manual_seed(args.seed + 1))
        train_seqs = torch.cat([gen_train, all_train[pick[: max(0, n_train_seqs - len(gen_train))]]])
        heldout_all = sequences(model, held)
        heldout_seqs = heldout_all[
            torch.randperm(len(heldout_all), generator=torch.Generator().manual_seed(args.seed + 2))[
                : args.heldout_seqs
            ]
        ]
        log(f"{len(train_seqs)} training sequences ({len(gen_train)} generated), {len(heldout_seqs)} held out", start)
        acts = collect(model, train_seqs, start)
        save_file({"train_seqs": train_seqs, "heldout_seqs": heldout_seqs, "acts": acts}, str(cached))
    log(f"activations {tuple(acts.shape)}", start)

    if args.evaluate_only:
        raw = load_file(str(OUT_DIR / "sae_weights.safetensors"))
        weights = {name: raw[name] for name in ("W_enc", "W_dec", "b_enc", "b_dec")}
        previous = json.loads((OUT_DIR / "quality.json").read_text()) if (OUT_DIR / "quality.json").exists() else {}
        scale = float(previous.get("scale", 0.0))
    else:
        scale = math.sqrt(acts.shape[1]) / acts.norm(dim=-1).mean().item()
        sae = train(acts * scale, args, start)
        weights = fold(sae, scale)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(OUT_DIR / "sae_weights.safetensors"))
        (OUT_DIR / "cfg.json").write_text(json.dumps(sae_cfg(args, acts.shape[1], len(acts)), indent=2) + "\n")
        log("trained and saved", start)

    if args.probe_only:
        report = json.loads((OUT_DIR / "quality.json").read_text())
        report["probe_prompts"] = PROBE_PROMPTS
        report["probe"] = quality(model, [model.tokenize(p) for p in PROBE_PROMPTS], weights, args.k, start)
        (OUT_DIR / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
        log(json.dumps(report["probe"], indent=2), start)
        return

    fired = sum((encode_folded(acts[i : i + 4096], weights, args.k)[0] > 0).sum(0) for i in range(0, len(acts), 4096))
    density = torch.as_tensor(fired).float() / len(acts)
    save_file({"sparsity": torch.log10(density + 1e-10)}, str(OUT_DIR / "sparsity.safetensors"))
    features = interpretable_features(model, train_seqs, acts, weights, args.k)
    for f in features:
        print(f"feature {f['feature']:5d}  token {f['token']!r:14} purity {f['purity']:.2f}  rate {f['fire_rate']:.4f}")
        for c in f["contexts"][:3]:  # type: ignore[index]
            print("      ", repr(c))
    probe = quality(model, [model.tokenize(p) for p in PROBE_PROMPTS], weights, args.k, start)
    log(json.dumps(probe, indent=2), start)
    figures = quality(model, [heldout_seqs[i : i + 4] for i in range(0, len(heldout_seqs), 4)], weights, args.k, start)
    log(json.dumps(figures, indent=2), start)
    report = {
        "sae_id": SAE_ID,
        "hook": HOOK,
        "heldout": figures,
        "probe_prompts": PROBE_PROMPTS,
        "probe": probe,
        "dead_features": int((density == 0).sum()),
        "train_tokens": len(acts),
        "train_args": {k: v for k, v in vars(args).items() if k not in RUN_ONLY_ARGS},
        "scale": scale,
        "wall_seconds": round(time.monotonic() - start, 1),
        "interpretable_features": features,
    }
    (OUT_DIR / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"saved to {OUT_DIR}", start)

if __name__ == "__main__":
    main()
