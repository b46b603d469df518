"""Train one recipe variant and keep a checkpoint every few epochs, for the
quality measurements of the evaluation section, 21.5 (evaluated afterwards with `python -m npgan evaluate`).

    python experiments/recipe_sweep.py --model gan --epochs 60 --every 10 \
        --set d_dropout=0.3 real_label=0.9 --out runs/sweep/gan-drop03-smooth09
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import npgan
from npgan import checkpoint


def parse_setting(text):
    key, _, value = text.partition("=")
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # a plain string such as leaky_relu
    return key, tuple(value) if isinstance(value, list) else value


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=("gan", "cgan"), default="gan")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--every", type=int, default=10, help="keep a checkpoint every N epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GANConfig overrides")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    config = replace(npgan.book_config(args.model), **dict(map(parse_setting, args.set)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.to_json())
    images, labels = npgan.load_mnist("train")
    model = npgan.build(config, seed=args.seed)

    history = npgan.train(model, images, labels if model.conditional else None, epochs=args.epochs,
                          seed=args.seed, progress=False,
                          on_epoch_end=checkpoint.epoch_saver(model, out, args.epochs, args.every, args.seed))
    (out / "seconds.txt").write_text(f"{history.seconds:.1f}\n")


if __name__ == "__main__":
    main()
