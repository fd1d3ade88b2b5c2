"""Training: the one shared loop (loop.py) and the stages built on it, which differ only in data and loss.

    llmlab pretrain --out runs/base          # pretrain.py + data.py on loop.py
    from llmlab.train.loop import TrainConfig, Trainer, train

See loop.py's docstring for how a stage plugs in its batch source and loss function.
"""
