"""Hugging Face Trainer (transformers 5.x): a tiny BERT, eval every epoch, compute_metrics accuracy."""

import argparse

import numpy as np
import torch
from _truth import write_truth
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

EPOCHS = 4


class Tokens(torch.utils.data.Dataset):
    """Random token sequences; the label is whether the first token is below 22, 15 % flipped."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 40, (n, 24), generator=g)
        flip = torch.rand(n, generator=g) < 0.15
        self.labels = ((self.ids[:, 0] < 22) ^ flip).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(24, dtype=torch.long),
                "labels": self.labels[i]}


def compute_metrics(pred):
    logits, labels = pred
    return {"accuracy": float((np.argmax(logits, -1) == labels).mean())}


p = argparse.ArgumentParser()
p.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps, not each epoch")
eval_steps = p.parse_args().eval_steps
hf_logging.set_verbosity_warning()
torch.manual_seed(0)
config = BertConfig(vocab_size=48, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=32, num_labels=2)
model = BertForSequenceClassification(config)
args = TrainingArguments(
    output_dir="hf_out",
    num_train_epochs=EPOCHS,
    per_device_train_batch_size=16,
    per_device_eval_batch_size=64,
    learning_rate=1e-2,
    lr_scheduler_type="constant",
    eval_strategy="steps" if eval_steps else "epoch",
    logging_strategy="steps" if eval_steps else "epoch",
    eval_steps=eval_steps or None,
    logging_steps=eval_steps // 2 if eval_steps else 500,
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    seed=0,
)
trainer = Trainer(model=model, args=args, train_dataset=Tokens(192, 1), eval_dataset=Tokens(128, 2),
                  compute_metrics=compute_metrics)
trainer.train()

evals = [e for e in trainer.state.log_history if "eval_accuracy" in e]
write_truth(
    history=[e["eval_accuracy"] for e in evals],
    history_unit="eval" if eval_steps else "epoch",
    total_epochs=int(args.num_train_epochs),
    epochs_done=round(trainer.state.epoch),
    epoch_base=1,
    accuracy_key="eval_accuracy",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="trainer.state.log_history (eval_accuracy entries), args.num_train_epochs",
    notes="eval dicts print string values ('0.5703'); the training bar (tqdm) is on stderr"
    + (f"; evaluations every {eval_steps} steps, so 'epoch' is fractional ('0.5')" if eval_steps else ""),
    log_history=trainer.state.log_history,
)
