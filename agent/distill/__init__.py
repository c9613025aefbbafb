"""Knowledge distillation: teachers, label smoothing, and training the student."""

LABEL_MODES = ("teacher", "source", "combined")
