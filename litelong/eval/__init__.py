"""`litelong eval`: what a trained model can do at long context.

Modules, one job each (as torchtitan and RULER keep them apart): `tasks` (RULER-family
generators), `scorer` (greedy decoding, order-free for several answers, and intervals),
`models` (the model behind one scoring method), `subject` (a model source or a committed
TrainingJob), `text` (its tokenizer), `documents` (haystacks and long documents),
`fingerprint` (what names the results), `perplexity` (loss by position),
`decontamination` (n-gram overlap with the training data), `runner`, `report`.
Importing this package imports neither torch nor the synthesis stage.
"""
