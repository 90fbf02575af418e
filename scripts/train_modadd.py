"""Train ``modadd-113``: a one-layer GPT-2 that groks ``(a + b) mod 113``, the model of Nanda et al. 2023.

The recipe is "Progress measures for grokking via mechanistic interpretability": prompts ``a b =`` (three tokens,
the answer read at ``=``), 30% of the 113² pairs for training, full-batch AdamW (lr 1e-3, weight decay 1.0, betas
0.9/0.98, a 10-step linear warm-up), d_model 128, 4 heads of 32, d_mlp 512, ReLU, no dropout, untied unembedding.
It is built as a ``GPT2LMHeadModel`` so that the service's GPT-2 adapter serves it unchanged; the differences from
Nanda's hand-written transformer are GPT-2's: two LayerNorms in the block and one before the unembedding (their
gains and biases are not decayed, as is usual for norms), and biases on every linear layer. The answer is one of
the 114 logits (the 113 numbers and ``=``), trained with cross-entropy at the last position only.

Training stops once held-out accuracy reaches ``--stop-accuracy`` (99.5%) and the training loss is below
``--stop-loss`` (1e-3), or at ``--epochs``; it is seeded and deterministic on CPU. The forward used in training is
:func:`last_logits` (the model's own logits at ``=``, computed without the work that cannot change them); the tests
check the saved model through the service's own forward (tests/unit/workers/core/test_modadd.py).
The weights, a ``tokenizers`` WordLevel tokenizer (one token per number and one for ``=``, whitespace
pre-tokenizer, no BOS, so the prompt ``12 57 =`` is exactly three tokens; a word outside the vocabulary reads as
``=``) and ``quality.json`` (losses, accuracies, epochs, wall time, the embedding's key Fourier frequencies) are
written to ``workers/models/modadd-113/``.

The defaults are Nanda's. On two CPU cores shared with other jobs an epoch took 0.3–1 s, and with Nanda's lr and
weight decay the held-out accuracy was still at 30% after a few hundred epochs (his grokked after ~10k), so the
shipped weights were trained with twelve times his lr × weight decay, which grokked in ~300 epochs (with a loss
spike at epoch 100 on the way; the strong decay keeps the training loss near 0.2, hence the looser stop-loss)::

    .venv/bin/python scripts/train_modadd.py --lr 3e-3 --weight-decay 4 --epochs 1000 --eval-every 25 --stop-loss 0.5
    .venv/bin/python scripts/train_modadd.py     # Nanda's settings: expect ~10k+ epochs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import cast

import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention, GPT2Block

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "workers" / "models" / "modadd-113"
P = 113
EQUALS = "="


def make_tokenizer() -> PreTrainedTokenizerFast:
    """One token per number ``0``..``112`` (ids equal to the numbers) and ``=`` (id 113); no special tokens."""
    vocab = {str(n): n for n in range(P)} | {EQUALS: P}
    core = Tokenizer(WordLevel(vocab=vocab, unk_token=EQUALS))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, model_max_length=3, clean_up_tokenization_spaces=False
    )


def make_model(seed: int) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=P + 1,
        n_positions=3,
        n_ctx=3,  # type: ignore[call-arg]  # GPT2Config keeps unknown keys; TransformerLens reads n_ctx
        n_embd=128,
        n_layer=1,
        n_head=4,
        n_inner=512,
        activation_function="relu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def dataset(seed: int, train_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs as ``[a, b, =]`` with labels ``(a + b) % P``, split by a seeded permutation."""
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    tokens = torch.stack([a.flatten(), b.flatten(), torch.full((P * P,), P)], dim=1)
    labels = (a.flatten() + b.flatten()) % P
    order = torch.randperm(P * P, generator=torch.Generator().manual_seed(seed))
    cut = int(train_fraction * P * P)
    return tokens[order[:cut]], labels[order[:cut]], tokens[order[cut:]], labels[order[cut:]]


def fourier_spectrum(embedding: torch.Tensor) -> torch.Tensor:
    """Share of the embedding's squared norm at each frequency 0..P//2 (k and P−k together), along the inputs."""
    power = torch.fft.fft(embedding.double(), dim=0).abs().pow(2).sum(dim=1)
    shares = torch.cat([power[:1], power[1 : P // 2 + 1] + power[P - torch.arange(1, P // 2 + 1)]])
    return shares / shares.sum()


def last_logits(model: GPT2LMHeadModel, tokens: torch.Tensor) -> torch.Tensor:
    """GPT-2's logits at the last position of ``[a, b, =]``, computed the cheap way (training is CPU-bound).

    In one layer, keys and values at positions 0 and 1 depend only on ``a`` and ``b`` and everything at position
    2 before attention is one constant (``=`` is always there), so LayerNorm and the QKV projection run on the
    114 token rows per position and are gathered per pair; only the attention output, the MLP and the unembedding
    run per pair, at the last position alone. The script checks the result against the model's own forward.
    """
    block = cast(GPT2Block, model.transformer.h[0])
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    attn: GPT2Attention = block.attn
    heads, d_head = attn.num_heads, attn.head_dim
    resid = wte.unsqueeze(0) + wpe.unsqueeze(1)  # [pos, vocab, d_model]
    q, k, v = attn.c_attn(block.ln_1(resid)).split(attn.split_size, dim=-1)
    rows = torch.arange(3)
    keys = k[rows, tokens].unflatten(-1, (heads, d_head))  # [batch, pos, head, d_head]
    values = v[rows, tokens].unflatten(-1, (heads, d_head))
    query = q[2, P].unflatten(-1, (heads, d_head))  # [head, d_head]
    pattern = torch.einsum("hd,bphd->bhp", query, keys).div(d_head**0.5).softmax(dim=-1)
    z = torch.einsum("bhp,bphd->bhd", pattern, values).flatten(1)
    mid = resid[2, P] + attn.c_proj(z)
    post = mid + block.mlp(block.ln_2(mid))
    logits: torch.Tensor = model.lm_head(model.transformer.ln_f(post))
    return logits


def _loss_and_accuracy(
    model: GPT2LMHeadModel, tokens: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, float]:
    logits = last_logits(model, tokens)
    loss = nn.functional.cross_entropy(logits, labels)
    return loss, (logits.argmax(-1) == labels).float().mean().item()


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    train_x, train_y, test_x, test_y = dataset(args.seed, args.train_fraction)
    model = make_model(args.seed)
    no_decay = [p for n, p in model.named_parameters() if ".ln_" in n or n.startswith("transformer.ln_")]
    decay = [p for n, p in model.named_parameters() if not (".ln_" in n or n.startswith("transformer.ln_"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 10, 1.0))
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, args.epochs + 1):
        model.train(True)
        loss, _ = _loss_and_accuracy(model, train_x, train_y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        if epoch % args.eval_every == 0:
            model.train(False)
            with torch.no_grad():
                train_loss, train_acc = _loss_and_accuracy(model, train_x, train_y)
                test_loss, test_acc = _loss_and_accuracy(model, test_x, test_y)
            print(
                f"epoch {epoch:6d}  train loss {train_loss.item():.3e} acc {train_acc:.4f}  "
                f"test loss {test_loss.item():.3e} acc {test_acc:.4f}  {time.perf_counter() - start:6.1f} s",
                flush=True,
            )
            if test_acc >= args.stop_accuracy and train_loss.item() < args.stop_loss:
                break
    wall = time.perf_counter() - start
    model.train(False)
    with torch.no_grad():
        train_loss, train_acc = _loss_and_accuracy(model, train_x, train_y)
        test_loss, test_acc = _loss_and_accuracy(model, test_x, test_y)
    spectrum = fourier_spectrum(model.transformer.wte.weight[:P].detach())
    top = torch.argsort(spectrum, descending=True)[: args.key_frequencies]
    quality = {
        "model_id": "modadd-113",
        "task": f"(a + b) mod {P}, prompt 'a b ='",
        "epochs": epoch,
        "wall_seconds": round(wall, 1),
        "train": {"pairs": len(train_y), "loss": train_loss.item(), "accuracy": train_acc},
        "test": {"pairs": len(test_y), "loss": test_loss.item(), "accuracy": test_acc},
        "embedding_fourier": {
            "key_frequencies": top.tolist(),
            "key_frequency_shares": [round(spectrum[k].item(), 4) for k in top],
            "key_frequencies_share": round(spectrum[top].sum().item(), 4),
            "measure": "share of the squared norm of W_E[:113] along the input axis, k and 113-k together",
        },
        "train_args": {k: v for k, v in vars(args).items() if k not in ("out", "threads")},
    }
    print(json.dumps(quality, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    make_tokenizer().save_pretrained(args.out)
    (args.out / "quality.json").write_text(json.dumps(quality, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40_000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1.0)
    parser.add_argument("--train-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--stop-accuracy", type=float, default=0.995)
    parser.add_argument("--stop-loss", type=float, default=1e-3)
    parser.add_argument("--key-frequencies", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
