"""The one exception type CLI commands raise for expected failures (printed as one line, exit code 2)."""


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
