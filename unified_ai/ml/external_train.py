"""Moved to `unified_ai.stages.training.external_train`; `python -m` of this path still works."""

from unified_ai.stages.training.external_train import main

if __name__ == "__main__":
    main()
