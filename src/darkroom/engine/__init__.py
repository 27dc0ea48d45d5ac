"""The engine: the scheduler claims runs and an executor runs them (local subprocesses now,
Ray later). Only the engine moves runs from `running` to an end state."""
