"""The one exception type the data package raises for bad inputs."""


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable, or not in the expected format.

    Messages name the file or folder at fault and say what was expected.
    """
