"""`litelong eval`: what a trained model can do at long context.

Modules, one job each (as torchtitan and RULER keep them apart): `tasks` (RULER-family
generators), `scorer` (exact match and intervals), `models` (the model behind one scoring
method), `subject` (a model source or a committed TrainingJob), `text` (its tokenizer),
`documents` (haystacks and long documents), `perplexity` (loss by position),
`decontamination` (n-gram overlap with the training data), `runner`, `report`.
Importing this package imports neither torch nor the synthesis stage.
"""
