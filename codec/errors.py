"""The errors a user can cause, in one light module so the CLI can catch them without importing torch.

Each carries a one-line message that says what was wrong with which input.
"""


class ImageInputError(ValueError):
    """An input that cannot be compressed: missing, not an image, empty, or with data we would lose."""


class ModelFileError(ValueError):
    """A model file that cannot be used: unreadable, of another format, or damaged."""


class UnknownModelError(LookupError):
    """No shipped model has that name or id, and no such model file exists."""


class OutputExistsError(FileExistsError):
    """The output path exists and overwriting was not asked for."""


class TrainingDivergedError(ArithmeticError):
    """A training step gave a non-finite loss; the run stops before that step reaches a checkpoint."""


USER_ERRORS = (ImageInputError, ModelFileError, UnknownModelError, OutputExistsError, TrainingDivergedError)
