"""`gs://bucket/name` URIs: parse them, or say what is wrong with one."""

from __future__ import annotations

import re

from src.common.errors import ConfigError

_GCS_URI = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(?P<prefix>.*))?$")


def gcs_uri_problem(uri: str, name: str = "source") -> str | None:
    """None for `gs://bucket/prefix` with a non-empty prefix, else what is wrong and the fix."""
    match = _GCS_URI.match(uri or "")
    if not match:
        return (
            f"{name}={uri!r} is not a GCS URI: pass one of the form gs://BUCKET/PREFIX "
            "(a bucket name of 3-63 lower-case letters, digits, dots, dashes or underscores, "
            "then the folder or archive that holds the images)"
        )
    if not (match.group("prefix") or "").strip("/"):
        return (
            f"{name}={uri!r} has an empty prefix: name the folder or object inside the bucket, "
            f"for example gs://{match.group('bucket')}/images/"
        )
    return None


def parse_gcs_uri(uri: str, name: str = "source") -> tuple[str, str]:
    """Splits `gs://bucket/prefix` into bucket and prefix; raises ConfigError when malformed."""
    problem = gcs_uri_problem(uri, name)
    if problem:
        raise ConfigError(problem)
    match = _GCS_URI.match(uri)
    return match.group("bucket"), match.group("prefix")
