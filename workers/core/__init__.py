"""The compute core: everything that touches a torch model. Imports torch and transformers only."""
