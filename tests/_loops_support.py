"""One tiny GPT on the same bytes, trained by Lightning, Hugging Face ``Trainer`` and a plain loop.

The model is the stdlib GPT of ``examples/tiny_gpt.py`` (from a config, nothing downloaded) with a
vocabulary of 257: bytes and one padding id. :class:`CausalLM` gives it the ``Trainer``'s calling
convention (``model(input_ids, attention_mask, labels)`` returning the loss, labels shifted
inside, like Hugging Face causal LMs). Samples are byte strings of uneven length, collated by
``DataCollatorForLanguageModeling`` (padding to ``SEQ_LEN``, padded labels ``-100``) for every
loop, so each loop sees the same padded batches.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from examples.tiny_gpt import IGNORE_INDEX, GPTConfig, TinyGPT

SEQ_LEN = 16
PAD_ID = 256
LR = 2e-3
MICRO_BATCH = 2
ACCUMULATION = 2


def lengths(n: int, seed: int = 0) -> list[int]:
    """Uneven sample lengths in [2, SEQ_LEN]."""
    return [2 + (7 * i + 3 * seed) % (SEQ_LEN - 1) for i in range(n)]


def samples(n: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``n`` byte sequences of :func:`lengths`, as tokenized samples ``{"input_ids": [...]}``."""
    g = torch.Generator().manual_seed(seed)
    return [
        {"input_ids": torch.randint(0, 256, (k,), generator=g).tolist()} for k in lengths(n, seed)
    ]


def byte_tokenizer() -> Any:
    """A tokenizer of bytes with a padding token (id 256): what the collator pads with."""
    from transformers import PreTrainedTokenizer

    class ByteTokenizer(PreTrainedTokenizer):
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(pad_token="<pad>", **kwargs)

        @property
        def vocab_size(self) -> int:
            return 256

        def get_vocab(self) -> dict[str, int]:
            return {**{chr(i): i for i in range(256)}, "<pad>": PAD_ID}

        def _tokenize(self, text: str) -> list[str]:
            return list(text)

        def _convert_token_to_id(self, token: str) -> int:
            return PAD_ID if token == "<pad>" else ord(token)

        def _convert_id_to_token(self, index: int) -> str:
            return "<pad>" if index == PAD_ID else chr(index)

    return ByteTokenizer()


def collator() -> Any:
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(byte_tokenizer(), mlm=False, pad_to_multiple_of=SEQ_LEN)


def batches(n_samples: int, seed: int = 0) -> list[dict[str, Tensor]]:
    """The collated micro-batches, in order."""
    data, collate = samples(n_samples, seed), collator()
    return [collate(data[i : i + MICRO_BATCH]) for i in range(0, n_samples, MICRO_BATCH)]


class CausalLM(nn.Module):
    """The tiny GPT with Hugging Face's causal-LM convention: next-token loss, shifted inside."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gpt = TinyGPT(GPTConfig(n_layer=2, n_head=2, d_model=32, seq_len=SEQ_LEN, vocab=257))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        logits = self.gpt(input_ids)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)),
                labels[:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return out


def lightning_module() -> Any:
    import lightning as L

    class LitCausalLM(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.lm = CausalLM()

        def forward(self, input_ids: Tensor, **kwargs: Tensor) -> dict[str, Tensor]:
            return self.lm(input_ids, **kwargs)

        def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
            return self.lm(**batch)["loss"]

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=LR)

    return LitCausalLM()


def trainer_arguments(out_dir: str, max_steps: int, report_to: str, **kwargs: Any) -> Any:
    """Quiet CPU ``TrainingArguments``: constant learning rate, no saving, no shuffling effect
    on the counts (every batch is padded to SEQ_LEN)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=out_dir,
        max_steps=max_steps,
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=ACCUMULATION,
        learning_rate=LR,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        use_cpu=True,
        report_to=report_to,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **kwargs,
    )


def quiet_transformers() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


N_SAMPLES = 12
STEPS = N_SAMPLES // (MICRO_BATCH * ACCUMULATION)  # 3 optimizer steps


def train_lightning(family: str, **options: Any) -> str:
    """One Lightning run in the active experiment; returns its run id."""
    import lightning as L
    import mlflow
    from torch.utils.data import DataLoader

    from lightning_callbacks import ScalingLawCallback

    callback = ScalingLawCallback(family=family, **options)
    data = DataLoader(samples(N_SAMPLES), batch_size=MICRO_BATCH, collate_fn=collator())
    with mlflow.start_run() as run:
        L.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_steps=STEPS,
            accumulate_grad_batches=ACCUMULATION,
            callbacks=[callback],
        ).fit(lightning_module(), data)
    return run.info.run_id


def train_trainer(family: str, out_dir: str, report_to: str = "mlflow", **options: Any) -> Any:
    """One Hugging Face ``Trainer`` run; returns its ``ScalingLawTrainerCallback``."""
    from transformers import Trainer

    from mlflow_scaling.integrations.transformers import ScalingLawTrainerCallback

    quiet_transformers()
    callback = ScalingLawTrainerCallback(family=family, **options)
    Trainer(
        model=CausalLM(),
        args=trainer_arguments(out_dir, STEPS, report_to),
        train_dataset=samples(N_SAMPLES),
        data_collator=collator(),
        callbacks=[callback],
    ).train()
    return callback


def train_torch(family: str, **options: Any) -> str:
    """One plain PyTorch run (the loop a user writes); returns its run id."""
    import mlflow

    from mlflow_scaling.integrations.torch import ScalingCounter

    model = CausalLM()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    micro = batches(N_SAMPLES)
    with mlflow.start_run() as run, ScalingCounter(model, family=family, **options) as counter:
        for step in range(STEPS):
            step_batches = micro[step * ACCUMULATION : (step + 1) * ACCUMULATION]
            for batch in step_batches:
                (model(**batch)["loss"] / ACCUMULATION).backward()
            optimizer.step()
            counter.step(
                [b["input_ids"] for b in step_batches],
                optimizer,
                attention_mask=[b["attention_mask"] for b in step_batches],
                labels=[b["labels"] for b in step_batches],
            )
            optimizer.zero_grad()
    return run.info.run_id
