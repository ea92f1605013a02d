"""`python -m shuken.cli`: the same app as the `shuken` script."""

from shuken.cli import app

app()
