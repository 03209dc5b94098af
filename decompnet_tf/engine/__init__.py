"""Training engine: the custom train_step, the stage schedule, checkpoints and callbacks."""
